"""``operator policy``: show or change the database's approval policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from operator_core.cli.app import get_config, policy_app, run_sync, with_executor
from operator_core.cli.output import emit, fmt_time
from operator_core.env import parse_bool
from operator_core.errors import ValidationError

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from operator_core.actions.executor import ActionExecutor


_POLICY_SETTINGS = {"approval-mode": "approval_mode", "four-eyes": "four_eyes"}


def _policy_lines(data: dict[str, Any]) -> list[str]:
    return [
        f"approval-mode {'on' if data['approval_mode'] else 'off'}",
        f"four-eyes     {'on' if data['four_eyes'] else 'off'}",
        f"set by        {data['policy_changed_by'] or '-'} "
        f"at {fmt_time(data['policy_changed_at'])}",
        f"you are       {data['identity']}",
    ]


@policy_app.command("show")
def policy_show(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """The database's approval policy (every process follows it)."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> dict[str, Any]:
        return {**(await ex.policy()).as_dict(), "identity": ex.identity}

    data = run_sync(with_executor(cfg, go, read_only=True))
    if as_json:
        emit(data)
        return
    for line in _policy_lines(data):
        typer.echo(line)


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    setting: Annotated[str, typer.Argument(help="approval-mode or four-eyes")],
    value: Annotated[str, typer.Argument(help="on or off")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log)")] = "",
) -> None:
    """Change a setting of the database's policy (audited)."""
    cfg = get_config(ctx)
    name = _POLICY_SETTINGS.get(setting.strip().lower())
    if name is None:
        raise ValidationError(
            f"unknown policy setting {setting!r}: use approval-mode or four-eyes", "setting"
        )
    on = parse_bool(value, setting)
    changed = run_sync(
        with_executor(cfg, lambda ex: ex.set_policy(name, on, cfg.actor, reason), create=True)
    )
    state = "on" if on else "off"
    typer.echo(f"{setting} {state}" + (f" (set by {cfg.who})" if changed else " (it already was)"))
