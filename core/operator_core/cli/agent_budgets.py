"""``operator agents``: each agent's proposal budget and allow-list (set, unset, list).

An agent is what proposes as ``agent:NAME`` (``operator mcp --agent NAME``, or ``--actor
agent:NAME``). Its proposals over budget or outside its allow-list are refused when made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from operator_core.cli.app import app, get_config, group, run_sync, with_executor
from operator_core.cli.output import emit, fmt_time, print_table
from operator_core.errors import ValidationError

if TYPE_CHECKING:
    from operator_core.actions.executor import ActionExecutor

agents_app = group("Agents' proposal budgets and allow-lists.")
app.add_typer(agents_app, name="agents")

NameArg = Annotated[str, typer.Argument(help="The agent's name (it proposes as agent:NAME)")]


@agents_app.command("set")
def agents_set(
    ctx: typer.Context,
    name: NameArg,
    max_proposals: Annotated[
        int | None, typer.Option("--max-proposals", help="Proposals allowed per window")
    ] = None,
    per: Annotated[str | None, typer.Option("--per", help="The window: 90s, 10m, 1h, 1d")] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="An action it may propose (repeat; none: any)"),
    ] = None,
) -> None:
    """Give an agent a proposal budget and/or an allow-list, replacing what it had."""
    from operator_core.actions.definitions import parse_window
    from operator_core.identity import check_agent_name

    cfg = get_config(ctx)
    check_agent_name(name)
    per_seconds = None
    if per is not None:
        try:
            per_seconds = parse_window(per)
        except ValueError as exc:
            raise ValidationError(f"--per: {exc}", "per") from None
    actions = [a.strip() for a in allow or []]

    async def go(ex: ActionExecutor) -> None:
        await ex.set_agent_budget(name, max_proposals, per_seconds, actions, cfg.who)

    run_sync(with_executor(cfg, go, with_subject=True, create=True))
    limit = f"{max_proposals} proposals per {per}" if max_proposals is not None else "no limit"
    typer.echo(f"agent {name}: {limit}; may propose {', '.join(actions) or 'any action'}")


@agents_app.command("unset")
def agents_unset(ctx: typer.Context, name: NameArg) -> None:
    """Remove an agent's budget and allow-list: it may propose anything again."""
    cfg = get_config(ctx)
    removed = run_sync(with_executor(cfg, lambda ex: ex.clear_agent_budget(name, cfg.who)))
    typer.echo(f"agent {name}: " + ("budget removed" if removed else "had no budget"))


@agents_app.command("list")
def agents_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Each agent with a budget: its limit, its use in the current window, what it may
    propose."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> list[Any]:
        return await ex.agent_budgets()

    budgets = run_sync(with_executor(cfg, go, read_only=True))
    if as_json:
        emit([b.as_dict() for b in budgets])
        return
    if not budgets:
        typer.echo("no agent has a budget ('operator agents set NAME ...' gives one)")
        return
    rows = []
    for b in budgets:
        used = "-" if b.max_proposals is None else f"{b.used}/{b.max_proposals}"
        rows.append(
            (
                b.agent,
                b.limit_text(),
                used,
                fmt_time(b.next_at) if b.next_at else "-",
                ", ".join(b.allow) or "any",
                f"{b.set_by} {fmt_time(b.set_at)}",
            )
        )
    print_table(("AGENT", "LIMIT", "USED", "FULL UNTIL", "ALLOWED", "SET BY"), rows)
