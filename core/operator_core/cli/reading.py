"""Reading commands: ``actions``, ``workflows``, ``audit`` and ``status``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from operator_core.cli.app import (
    IdArg,
    LimitOption,
    actions_app,
    app,
    audit_app,
    get_config,
    run_sync,
    with_executor,
    with_reads,
    workflows_app,
)
from operator_core.cli.formats import (
    ACTION_COLUMNS,
    WORKFLOW_COLUMNS,
    action_row,
    workflow_lines,
    workflow_row,
)
from operator_core.cli.output import (
    by_state,
    emit,
    fmt_time,
    json_line,
    json_time,
    print_table,
    proposal_json,
    state_label,
)
from operator_core.cli.parsing import MAX_LIST
from operator_core.errors import ValidationError
from operator_core.model.states import ActionStatus
from operator_core.safe_text import visible

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from operator_core.actions.executor import ActionExecutor
    from operator_core.db.reads import Reads
    from operator_core.model.types import ActionProposal, WorkflowProposal


@actions_app.command("list")
def actions_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status")] = None,
    limit: LimitOption = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Newest actions first."""
    cfg = get_config(ctx)
    st = None
    if status is not None:
        try:
            st = ActionStatus(status)
        except ValueError:
            raise ValidationError(
                f"unknown status {status!r}: use one of "
                + ", ".join(s.value for s in ActionStatus),
                "status",
            ) from None
    rows = run_sync(
        with_executor(cfg, lambda ex: ex.db.list_proposals(st, limit=limit), read_only=True)
    )
    if as_json:
        emit([proposal_json(p) for p in rows])
        return
    print_table(ACTION_COLUMNS, [action_row(p) for p in rows])


@actions_app.command("show")
def actions_show(
    ctx: typer.Context,
    target: IdArg,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One action with its records and audit events."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> dict[str, Any]:
        from operator_core.cli.subject_facts import keep
        from operator_core.db.budgets import waiting_on
        from operator_core.db.lookups import identities

        p = await ex.require_proposal(target)
        records = await ex.db.list_records(target)
        events = await ex.db.list_audit_events(proposal_id=target, limit=200)
        ticket = await ex.db.get_ticket(p.ticket_id) if p.ticket_id else None
        subject = ex.registry.subject
        definition = ex.registry.get_definition(p.action_name)
        spent = await ex.db.budget_waits()
        wait = waiting_on(p, spent)
        preview = None
        if subject is not None and p.action_name in ex.registry:
            preview = subject.preview(p.action_name, p.parameters)
        # For the next show of it on the fast path (cli/fast_show.py).
        keep(cfg, ex.registry, [(p.action_name, p.parameters)])
        return {
            "action": proposal_json(p),
            "state": state_label(p),
            "preview": preview,
            "budget": definition.budget.describe() if definition and definition.budget else None,
            "budget_wait": wait.describe(ex.db.clock.now()) if wait else None,
            "approval": (await ex.approval_check(target)).to_json(),
            "records": [r.model_dump(mode="json") for r in records],
            "audit": [e.model_dump(mode="json") for e in events],
            "ticket": ticket.model_dump(mode="json") if ticket else None,
            "identities": await ex.db.read(identities, False, target),
            "automation": origin.to_json()
            if (origin := await ex.proposal_origin(target))
            else None,
        }

    data = run_sync(with_executor(cfg, go, with_subject=True, read_only=True))
    if as_json:
        emit(data)
        return
    from operator_core.cli.show_action import action_text

    typer.echo(action_text(data))


@workflows_app.command("list")
def workflows_list(
    ctx: typer.Context,
    limit: LimitOption = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Newest workflows first."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> list[tuple[WorkflowProposal, list[ActionProposal]]]:
        wfs = await ex.db.list_workflows(limit=limit)
        steps = await ex.db.list_workflow_steps([w.id for w in wfs if w.id is not None])
        return [(w, steps.get(w.id or 0, [])) for w in wfs]

    rows = run_sync(with_executor(cfg, go, read_only=True))
    if as_json:
        emit(
            [
                {**w.model_dump(mode="json"), "steps": [proposal_json(s) for s in st]}
                for w, st in rows
            ]
        )
        return
    print_table(WORKFLOW_COLUMNS, [workflow_row(w, st) for w, st in rows])


@workflows_app.command("show")
def workflows_show(
    ctx: typer.Context,
    target: IdArg,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One workflow with its steps."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> tuple[WorkflowProposal, list[ActionProposal], Any]:
        from operator_core.db.lookups import identities

        wf = await ex.require_workflow(target)
        return (
            wf,
            await ex.db.list_workflow_actions(target),
            await ex.db.read(identities, True, target),
        )

    wf, steps, who = run_sync(with_executor(cfg, go, read_only=True))
    if as_json:
        emit(
            {
                **wf.model_dump(mode="json"),
                "steps": [proposal_json(s) for s in steps],
                "identities": who,
            }
        )
        return
    typer.echo("\n".join(workflow_lines(wf, steps, who)))


@audit_app.command("tail")
def audit_tail(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, max=MAX_LIST)] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest audit events."""
    cfg = get_config(ctx)
    events = run_sync(
        with_executor(cfg, lambda ex: ex.db.list_audit_events(limit=lines), read_only=True)
    )
    if as_json:
        emit([e.model_dump(mode="json") for e in events])
        return
    for e in events:
        target = (
            f"action {e.proposal_id}"
            if e.proposal_id
            else (f"workflow {e.workflow_id}" if e.workflow_id else "-")
        )
        typer.echo(
            f"{e.id}\t{fmt_time(e.timestamp)}\t{visible(e.event_type)}\t{target}\t"
            f"{visible(e.actor)}\t"
            f"{json_line(e.event_data)}"
        )


@app.command()
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Safety mode, counts and activity sparklines."""
    cfg = get_config(ctx)

    async def go(db: Reads) -> dict[str, Any]:
        from operator_core.clock import span
        from operator_core.db.budgets import waits
        from operator_core.db.lookups import read_policy

        mode, at, by, reason = await db.get_safety_mode()
        policy = await db.read(read_policy)
        counts = await db.counts()
        done, failed = await db.activity(60)
        spent = await db.read(waits, db.clock.now())
        return {
            "db": cfg.target.display,
            "safety_mode": mode,
            "mode_changed_by": by,
            "mode_changed_at": json_time(at),
            "mode_reason": reason,
            "kill_file": str(db.kill_file.path) if db.kill_file.engaged() else None,
            **policy.as_dict(),
            "by_status": by_state(counts.by_status, counts.retry_waiting),
            "awaiting_approval": counts.awaiting_approval,
            "workflows_awaiting_approval": counts.workflows_awaiting_approval,
            "workflows_open": counts.workflows_open,
            "scheduled": counts.scheduled,
            "retry_waiting": counts.retry_waiting,
            "executing": counts.executing,
            "executions_per_minute": done,
            "failures_per_minute": failed,
            "budgets_spent": [
                {
                    "action": w.action_name,
                    "runs": w.runs,
                    "per_seconds": w.per_seconds,
                    "used": w.used,
                    "next_slot_at": json_time(w.next_slot_at),
                    "note": f"{w.used} of {w.runs} per {span(w.per_seconds)} started; "
                    + w.describe(db.clock.now()),
                }
                for w in spent.values()
            ],
        }

    data = run_sync(with_reads(cfg, go))
    if as_json:
        emit(data)
        return
    from sparklines import sparklines

    mode = data["safety_mode"].upper()
    banner = (
        "EXECUTE"
        if mode == "EXECUTE"
        else (
            f"OBSERVE (execution off: {visible(data['mode_reason'])}, "
            f"by {visible(data['mode_changed_by'])})"
        )
    )
    typer.echo(f"database      {visible(data['db'])}")
    typer.echo(f"safety mode   {banner}")
    typer.echo(
        f"approval mode {'on' if data['approval_mode'] else 'off'}   four-eyes "
        f"{'on' if data['four_eyes'] else 'off'}   (database policy, set by "
        f"{data['policy_changed_by'] or '-'})"
    )
    typer.echo(
        f"awaiting approval {data['awaiting_approval']} action(s), "
        f"{data['workflows_awaiting_approval']} workflow(s)"
    )
    typer.echo(
        f"executing {data['executing']}  scheduled {data['scheduled']}  "
        f"retry-waiting {data['retry_waiting']}  open workflows {data['workflows_open']}"
    )
    typer.echo(
        "by status     "
        + "  ".join(f"{visible(k)} {v}" for k, v in sorted(data["by_status"].items()))
    )
    for w in data["budgets_spent"]:
        typer.echo(f"budget spent  {visible(w['action'])}: {w['note']}")
    peak = max(1, *data["executions_per_minute"])
    for label, key in (
        ("executions/min (1h)", "executions_per_minute"),
        ("failures/min   (1h)", "failures_per_minute"),
    ):
        line = sparklines(data[key], minimum=0, maximum=peak)[0]
        typer.echo(f"{label} {line} total {sum(data[key])}")
