"""Reading commands: ``actions``, ``workflows``, ``audit`` and ``status``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from operator_core.cli.app import (
    actions_app,
    app,
    audit_app,
    get_config,
    run_sync,
    with_executor,
    workflows_app,
)
from operator_core.cli.output import (
    emit,
    fmt_time,
    param_text,
    params_line,
    proposal_json,
    state_label,
)
from operator_core.errors import ValidationError
from operator_core.identity import actor_text
from operator_core.model.states import ActionStatus
from operator_core.safe_text import visible

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from operator_core.actions.executor import ActionExecutor
    from operator_core.model.types import ActionProposal, WorkflowProposal


@actions_app.command("list")
def actions_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
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
    rows = run_sync(with_executor(cfg, lambda ex: ex.db.list_proposals(st, limit=limit)))
    if as_json:
        emit([proposal_json(p) for p in rows])
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold")
    for col in ("ID", "ACTION", "PARAMETERS", "STATE", "WF", "PROPOSED", "BY"):
        table.add_column(col)
    for p in rows:
        # Text cells: what an agent wrote is never read as Rich markup ("[/]" would crash).
        cells = (
            str(p.id),
            p.action_name,
            params_line(p.parameters),
            state_label(p),
            str(p.workflow_id or ""),
            fmt_time(p.proposed_at),
            p.proposed_by,
        )
        table.add_row(*(Text(visible(c)) for c in cells))
    Console().print(table)


@actions_app.command("show")
def actions_show(
    ctx: typer.Context,
    target: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One action with its records and audit events."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> dict[str, Any]:
        from operator_core.db.policy import identities

        p = await ex.require_proposal(target)
        records = await ex.db.list_records(target)
        events = await ex.db.list_audit_events(proposal_id=target, limit=200)
        ticket = await ex.db.get_ticket(p.ticket_id) if p.ticket_id else None
        subject = ex.registry.subject
        preview = None
        if subject is not None and p.action_name in ex.registry:
            preview = subject.preview(p.action_name, p.parameters)
        return {
            "action": proposal_json(p),
            "preview": preview,
            "records": [r.model_dump(mode="json") for r in records],
            "audit": [e.model_dump(mode="json") for e in events],
            "ticket": ticket.model_dump(mode="json") if ticket else None,
            "identities": await ex.db.read(identities, False, target),
            "automation": origin.to_json()
            if (origin := await ex.proposal_origin(target))
            else None,
        }

    data = run_sync(with_executor(cfg, go, with_subject=True))
    if as_json:
        emit(data)
        return
    # Every value is escaped onto its own line: a parameter with a newline cannot forge a
    # "will run:" or "reason:" line of what the approver reads.
    a = data["action"]
    typer.echo(f"action {a['id']}: {visible(a['action_name'])}  [{a['status']}]")
    if a["parameters"]:
        typer.echo("  parameters:")
        for name, value in a["parameters"].items():
            typer.echo(f"    {visible(name)} = {visible(param_text(value))}")
    for key in (
        "reason",
        "proposed_by",
        "proposed_at",
        "requires_approval",
        "approved_by",
        "approved_at",
        "rejected_by",
        "rejection_reason",
        "workflow_id",
        "scheduled_at",
        "retry_count",
        "max_retries",
        "next_retry_at",
        "last_error",
        "cancel_reason",
        "expires_at",
    ):
        if a.get(key) not in (None, "", {}):
            typer.echo(f"  {key}: {visible(a[key])}")
    for key, who in data["identities"].items():
        if who:
            typer.echo(f"  {key}: {visible(who)}")
    if data["ticket"]:
        typer.echo(f"  ticket: #{data['ticket']['id']} {visible(data['ticket']['title'])}")
    if data["automation"]:
        o = data["automation"]
        typer.echo(
            f"  automation: {visible(o['automation'])} v{o['version']}, node "
            f"{visible(o['node'] or '-')}, execution {o['execution_id']}"
        )
    if data["preview"]:
        # A preview has lines of its own (cwd, headers, body): they are marked as its own.
        first, *more = str(data["preview"]).split("\n")
        typer.echo(f"  will run: {visible(first)}")
        for line in more:
            typer.echo(f"          | {visible(line)}")
    typer.echo("records:")
    for r in data["records"]:
        outcome = {True: "ok", False: "failed", None: "running"}[r["success"]]
        typer.echo(
            f"  attempt {r['attempt']}: {outcome} {r['started_at']} -> "
            f"{r['completed_at']} {visible(r['error_message'] or '')}"
        )
    typer.echo("audit:")
    for e in data["audit"]:
        typer.echo(
            f"  {e['timestamp']} {visible(e['event_type'])} by {visible(e['actor'])} "
            f"{json.dumps(e['event_data'], default=str)}"
        )


@workflows_app.command("list")
def workflows_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Newest workflows first."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> list[tuple[WorkflowProposal, list[ActionProposal]]]:
        wfs = await ex.db.list_workflows(limit=limit)
        steps = await ex.db.list_workflow_steps([w.id for w in wfs if w.id is not None])
        return [(w, steps.get(w.id or 0, [])) for w in wfs]

    rows = run_sync(with_executor(cfg, go))
    if as_json:
        emit(
            [
                {**w.model_dump(mode="json"), "steps": [proposal_json(s) for s in st]}
                for w, st in rows
            ]
        )
        return
    for w, st in rows:
        done = sum(1 for s in st if s.status == ActionStatus.COMPLETED)
        approval = (
            "approved"
            if w.approved_at
            else (
                "awaiting approval" if w.requires_approval and w.status.value == "pending" else ""
            )
        )
        typer.echo(
            f"{w.id}\t{visible(w.name)}\t{w.status.value}\t{done}/{len(st)} steps\t{approval}"
        )


@workflows_app.command("show")
def workflows_show(
    ctx: typer.Context,
    target: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One workflow with its steps."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> tuple[WorkflowProposal, list[ActionProposal], Any]:
        from operator_core.db.policy import identities

        wf = await ex.require_workflow(target)
        return (
            wf,
            await ex.db.list_workflow_actions(target),
            await ex.db.read(identities, True, target),
        )

    wf, steps, who = run_sync(with_executor(cfg, go))
    if as_json:
        emit(
            {
                **wf.model_dump(mode="json"),
                "steps": [proposal_json(s) for s in steps],
                "identities": who,
            }
        )
        return
    typer.echo(
        f"workflow {wf.id}: {visible(wf.name)}  [{wf.status.value}]  {visible(wf.description)}"
    )
    if wf.approved_by:
        approver = actor_text(wf.approved_by, who["approved_identity"] or "?")
        typer.echo(f"  approved by {visible(approver)} at {fmt_time(wf.approved_at)}")
    for s in steps:
        typer.echo(
            f"  {s.execution_order + 1}. #{s.id} {visible(s.action_name)} "
            f"{visible(params_line(s.parameters))}  [{state_label(s)}]"
        )


@audit_app.command("tail")
def audit_tail(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("-n", "--lines")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest audit events."""
    cfg = get_config(ctx)
    events = run_sync(with_executor(cfg, lambda ex: ex.db.list_audit_events(limit=lines)))
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
            f"{json.dumps(e.event_data, default=str, sort_keys=True)}"
        )


@app.command()
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Safety mode, counts and activity sparklines."""
    cfg = get_config(ctx)

    async def go(ex: ActionExecutor) -> dict[str, Any]:
        mode, at, by, reason = await ex.db.get_safety_mode()
        policy = await ex.policy()
        counts = await ex.db.counts()
        done, failed = await ex.db.activity(60)
        return {
            "db": str(cfg.db),
            "safety_mode": mode,
            "mode_changed_by": by,
            "mode_changed_at": at.isoformat() if at else None,
            "mode_reason": reason,
            "kill_file": str(ex.db.kill_file.path) if ex.db.kill_file.engaged() else None,
            **policy.as_dict(),
            "by_status": counts.by_status,
            "awaiting_approval": counts.awaiting_approval,
            "workflows_awaiting_approval": counts.workflows_awaiting_approval,
            "workflows_open": counts.workflows_open,
            "scheduled": counts.scheduled,
            "retry_waiting": counts.retry_waiting,
            "executing": counts.executing,
            "executions_per_minute": done,
            "failures_per_minute": failed,
        }

    data = run_sync(with_executor(cfg, go))
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
    peak = max(1, *data["executions_per_minute"])
    for label, key in (
        ("executions/min (1h)", "executions_per_minute"),
        ("failures/min   (1h)", "failures_per_minute"),
    ):
        line = sparklines(data[key], minimum=0, maximum=peak)[0]
        typer.echo(f"{label} {line} total {sum(data[key])}")
