"""``operator automations``: apply definition files as versions, read the history, diff,
roll back, enable and disable, and start a definition from a template.

A definition is checked completely against the loaded subject's registry before the
database is opened, so a bad file is one line on stderr and stores nothing. Executions (the
runner walking a definition) are cli/executions.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from operator_core.cli.app import (
    Config,
    automations_app,
    get_config,
    run_sync,
    with_executor,
)
from operator_core.cli.formats import AUTOMATION_COLUMNS, automation_row
from operator_core.cli.output import emit, fmt_time, print_table
from operator_core.cli.parsing import MAX_ID
from operator_core.errors import ConfigError, OperatorError
from operator_core.safe_text import visible

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from collections.abc import Awaitable, Callable

    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry
    from operator_core.automations.definition import AutomationDefinition
    from operator_core.db.automations import AutomationVersion, NewVersion, Stored

T = TypeVar("T")
P = TypeVar("P")

# The --subject whose actions each template's subject names.
_TEMPLATE_SUBJECTS = {"runbook": "commands:examples/runbook.toml"}

_Name = Annotated[str, typer.Argument(metavar="NAME", help="The automation's name")]
_Json = Annotated[bool, typer.Option("--json")]
_Note = Annotated[str, typer.Option("--note", help="Why (kept with the version)")]


def new_version(d: AutomationDefinition, note: str, copied_from: int | None) -> NewVersion:
    """A checked definition as the executor stores it."""
    from operator_core.automations.diff import definition_hash
    from operator_core.db.automations import NewVersion

    return NewVersion(
        definition=d.to_json_dict(),
        hash=definition_hash(d),
        scope_type=d.scope.type,
        scope_team=d.scope.team,
        trigger_event=d.trigger.event,
        enabled=d.settings.enabled,
        note=note,
        copied_from=copied_from,
    )


async def _checked_first(
    cfg: Config,
    check: Callable[[ActionRegistry], P],
    then: Callable[[ActionExecutor, P], Awaitable[T]],
) -> T:
    """``check`` against the subject's registry before the database is opened (or created),
    then ``then`` on the opened executor."""
    executor = cfg.executor(with_subject=True, create=True, seed_policy=False)
    try:
        prepared = check(executor.registry)
        await executor.open()
        return await then(executor, prepared)
    finally:
        await executor.close()
        if executor.registry.subject is not None:
            await executor.registry.subject.aclose()


def _stored_line(stored: Stored, unchanged: str) -> str:
    a = stored.automation
    name = visible(a.name)
    if not stored.changed:
        return f"{name} unchanged: {unchanged}; no version added"
    state = "enabled" if a.enabled else f"disabled: 'operator automations enable {name}'"
    if stored.created:
        return f"created automation {name} version 1 ({state})"
    return f"{name}: version {stored.version} ({state})"


@automations_app.command("apply")
def automations_apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A .json or .toml definition")],
    note: _Note = "",
    as_json: _Json = False,
) -> None:
    """Store a definition: a new automation, or version n+1 when it changed."""
    from operator_core.actions.automations import check_note
    from operator_core.automations.validate import load_checked

    cfg = get_config(ctx)
    checked_note = check_note(note)

    def check(registry: ActionRegistry) -> AutomationDefinition:
        return load_checked(file, registry)

    async def store(ex: ActionExecutor, d: AutomationDefinition) -> Stored:
        return await ex.store_automation(d.name, new_version(d, checked_note, None), cfg.actor)

    stored = run_sync(_checked_first(cfg, check, store))
    if as_json:
        emit(
            {
                "automation": stored.automation.to_json(),
                "version": stored.version,
                "created": stored.created,
                "changed": stored.changed,
            }
        )
        return
    typer.echo(_stored_line(stored, f"the file matches version {stored.version}"))


@automations_app.command("rollback")
def automations_rollback(
    ctx: typer.Context,
    name: _Name,
    to: Annotated[
        int, typer.Option("--to", metavar="V", min=1, max=MAX_ID, help="The version to bring back")
    ],
    note: _Note = "",
) -> None:
    """Append version n+1 equal to version V (history is never rewritten)."""
    from operator_core.actions.automations import check_note
    from operator_core.automations.definition import parse_definition
    from operator_core.automations.validate import check_definition

    cfg = get_config(ctx)
    checked_note = check_note(note) or f"rollback to version {to}"

    async def go(ex: ActionExecutor) -> Stored:
        old = await ex.automation_version(name, to)
        # Checked again: an action it names may have left the subject since.
        source = f"{name} version {to}"
        d = parse_definition(old.definition, source)
        check_definition(d, ex.registry, source)
        return await ex.store_automation(name, new_version(d, checked_note, to), cfg.actor)

    stored = run_sync(with_executor(cfg, go, with_subject=True))
    current = stored.automation.current_version
    typer.echo(_stored_line(stored, f"version {current} already has the definition of v{to}"))


def _set_enabled(ctx: typer.Context, name: str, enabled: bool) -> None:
    cfg = get_config(ctx)
    changed = run_sync(
        with_executor(cfg, lambda ex: ex.set_automation_enabled(name, enabled, cfg.actor))
    )
    word = "enabled" if enabled else "disabled"
    typer.echo(f"{visible(name)} {word}" + ("" if changed else f" (it already was {word})"))


@automations_app.command("enable")
def automations_enable(ctx: typer.Context, name: _Name) -> None:
    """Let ticket events start this automation."""
    _set_enabled(ctx, name, True)


@automations_app.command("disable")
def automations_disable(ctx: typer.Context, name: _Name) -> None:
    """Stop ticket events from starting this automation."""
    _set_enabled(ctx, name, False)


@automations_app.command("history")
def automations_history(ctx: typer.Context, name: _Name, as_json: _Json = False) -> None:
    """Every version, oldest first: who changed it, when and why."""
    cfg = get_config(ctx)
    versions = run_sync(with_executor(cfg, lambda ex: ex.automation_history(name)))
    if as_json:
        emit([v.to_json(with_definition=False) for v in versions])
        return
    for v in versions:
        copied = f"  (copy of v{v.copied_from})" if v.copied_from is not None else ""
        note = f"  {visible(v.note)}" if v.note else ""
        typer.echo(f"v{v.version}  {fmt_time(v.changed_at)}  {visible(v.changed_by)}{copied}{note}")


@automations_app.command("diff")
def automations_diff(
    ctx: typer.Context,
    name: _Name,
    v1: Annotated[int, typer.Argument(metavar="V1", min=1, max=MAX_ID)],
    v2: Annotated[int, typer.Argument(metavar="V2", min=1, max=MAX_ID)],
) -> None:
    """A unified diff of two versions' definitions."""
    from operator_core.automations.diff import diff

    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> tuple[AutomationVersion, AutomationVersion]:
        return await ex.automation_version(name, v1), await ex.automation_version(name, v2)

    a, b = run_sync(with_executor(cfg, go))
    text = diff(a.definition, b.definition, f"{name} v{v1}", f"{name} v{v2}")
    typer.echo(text or f"versions {v1} and {v2} of {visible(name)} are the same")


@automations_app.command("list")
def automations_list(ctx: typer.Context, as_json: _Json = False) -> None:
    """Every automation by name."""
    cfg = get_config(ctx)
    rows = run_sync(with_executor(cfg, lambda ex: ex.list_automations()))
    if as_json:
        emit([a.to_json() for a in rows])
        return
    print_table(AUTOMATION_COLUMNS, [automation_row(a) for a in rows])


@automations_app.command("show")
def automations_show(ctx: typer.Context, name: _Name, as_json: _Json = False) -> None:
    """An automation and its current definition, drawn as a tree."""
    from operator_core.automations.definition import parse_definition
    from operator_core.automations.tree import render_tree

    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> dict[str, Any]:
        a = await ex.require_automation(name)
        v = await ex.automation_version(name, a.current_version)
        return {"automation": a.to_json(), "current": v.to_json()}

    data = run_sync(with_executor(cfg, go))
    if as_json:
        emit(data)
        return
    a, v = data["automation"], data["current"]
    d = parse_definition(v["definition"], f"{name} version {a['version']}")
    typer.echo(f"automation {visible(a['name'])} version {a['version']}")
    typer.echo(f"  description: {visible(d.description)}")
    typer.echo(f"  enabled: {'yes' if a['enabled'] else 'no'}")
    scope = a["scope"]
    typer.echo(
        f"  scope: {visible(scope['type'] + (' ' + scope['team'] if scope['team'] else ''))}"
    )
    conditions = " and ".join(f"{c.field} = {c.value}" for c in d.trigger.conditions)
    typer.echo(
        f"  trigger: {d.trigger.event}" + (f" when {visible(conditions)}" if conditions else "")
    )
    typer.echo(f"  timeout: {visible(d.settings.timeout)}")
    typer.echo(f"  changed: {visible(v['changed_at'])} by {visible(v['changed_by'])}")
    for line in render_tree(d):
        typer.echo(f"  {line}")


@automations_app.command("templates")
def automations_templates(as_json: _Json = False) -> None:
    """The built-in definitions to start from (automations new NAME --from-template T)."""
    from operator_core.automations.templates import TEMPLATES

    if as_json:
        emit(
            [
                {"name": t.name, "category": t.category, "subject": t.subject, "summary": t.summary}
                for t in TEMPLATES
            ]
        )
        return
    width = max(len(t.name) for t in TEMPLATES)
    for t in TEMPLATES:
        typer.echo(f"{t.name:<{width}}  {t.category:<15}  {t.subject:<7}  {t.summary}")


@automations_app.command("new")
def automations_new(
    name: _Name,
    template: Annotated[str, typer.Option("--from-template", metavar="T", help="A template")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The file to write (default NAME.json)")
    ] = None,
) -> None:
    """Write a definition file from a template, to edit and then apply."""
    from operator_core.automations.definition import parse_definition
    from operator_core.automations.templates import get_template

    chosen = get_template(template)
    # The name must be one an automation can have (checked here, before writing).
    parse_definition(chosen.definition(name), "NAME")
    path = output or Path(f"{name}.json")
    if path.suffix.lower() != ".json":
        raise ConfigError(f"{visible(path)}: a template is written as JSON (end it in .json)")
    try:
        with path.open("x", encoding="utf-8") as f:
            f.write(chosen.text(name))
    except FileExistsError:
        raise ConfigError(f"{visible(path)} already exists; not overwritten") from None
    except OSError as exc:
        raise OperatorError(f"cannot write {visible(path)}: {exc.strerror or exc}") from None
    subject = _TEMPLATE_SUBJECTS.get(chosen.subject, chosen.subject)
    typer.echo(
        f"wrote {visible(path)} from template {chosen.name}; apply it with "
        f"'operator --subject {subject} automations apply {visible(path)}'"
    )
