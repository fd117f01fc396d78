"""``operator automations run|executions|execution|cancel``: start an automation by hand,
list and show executions (the frozen definition drawn as a tree with each node's state),
cancel one. The runner walks them; these commands only ask and read, through the executor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from operator_core.cli.app import automations_app, get_config, run_sync, with_executor
from operator_core.cli.formats import EXECUTION_COLUMNS, execution_row
from operator_core.cli.output import emit, fmt_time, print_table
from operator_core.safe_text import visible

if TYPE_CHECKING:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.db.executions import Execution

_Json = Annotated[bool, typer.Option("--json")]
_Id = Annotated[int, typer.Argument(metavar="ID", help="The execution's id")]


@automations_app.command("run")
def automations_run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The automation's name")],
    ticket: Annotated[int, typer.Option("--ticket", metavar="ID", help="The ticket to run on")],
    as_json: _Json = False,
) -> None:
    """Start an automation on a ticket by hand (the manual trigger); the runner walks it."""
    cfg = get_config(ctx)
    execution = run_sync(
        with_executor(cfg, lambda ex: ex.run_automation(name, ticket, cfg.actor), seed_policy=True)
    )
    if as_json:
        emit(execution.to_json(with_definition=False))
        return
    typer.echo(
        f"execution {execution.id}: {visible(execution.automation_name)} "
        f"v{execution.version} on ticket {execution.ticket_id} (pending: the runner starts it)"
    )


@automations_app.command("executions")
def automations_executions(
    ctx: typer.Context,
    automation: Annotated[
        str | None, typer.Option("--automation", metavar="NAME", help="Only this automation's")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", metavar="S", help="pending|running|completed|failed|cancelled"),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: _Json = False,
) -> None:
    """Executions, newest first."""
    cfg = get_config(ctx)
    rows = run_sync(with_executor(cfg, lambda ex: ex.list_executions(automation, status, limit)))
    if as_json:
        emit([e.to_json(with_definition=False) for e in rows])
        return
    print_table(EXECUTION_COLUMNS, [execution_row(e) for e in rows])


@automations_app.command("execution")
def automations_execution(ctx: typer.Context, execution_id: _Id, as_json: _Json = False) -> None:
    """One execution: its frozen definition as a tree with each node's state and result."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> tuple[Execution, list[dict[str, Any]]]:
        e = await ex.get_execution(execution_id)
        made = await ex.execution_proposals(execution_id)
        return e, [{"id": p.id, "node": p.node, "status": p.status} for p in made]

    execution, made = run_sync(with_executor(cfg, go))
    if as_json:
        emit({**execution.to_json(), "proposals": made})
        return
    from operator_core.automations.definition import parse_definition
    from operator_core.automations.tree import render_tree

    e = execution
    typer.echo(
        f"execution {e.id}: {visible(e.automation_name)} v{e.version} on ticket {e.ticket_id}"
        f"  [{e.status}]"
    )
    typer.echo(f"  trigger: {visible(e.trigger)}  started by: {visible(e.started_by)}")
    typer.echo(f"  created: {fmt_time(e.created_at)}  finished: {fmt_time(e.finished_at)}")
    if e.next_wake_at is not None:
        typer.echo(f"  next wake: {fmt_time(e.next_wake_at)}")
    if e.error:
        typer.echo(f"  error: {visible(e.error)}")
    d = parse_definition(e.definition, f"execution {e.id}")
    for line in render_tree(d, e.state):
        typer.echo(f"  {line}")


@automations_app.command("cancel")
def automations_cancel(
    ctx: typer.Context,
    execution_id: _Id,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with it)")] = "",
) -> None:
    """Cancel an execution and its pending proposals (running ones are asked to stop)."""
    cfg = get_config(ctx)
    why = reason or "cancelled by an operator"
    e = run_sync(with_executor(cfg, lambda ex: ex.cancel_execution(execution_id, cfg.actor, why)))
    typer.echo(f"execution {e.id} cancelled ({visible(e.automation_name)} on ticket {e.ticket_id})")
