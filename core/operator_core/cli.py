"""The ``operator`` command: a thin face over ActionExecutor.

Every error the engine raises becomes one line on stderr and a non-zero exit; nothing is
half-written because every change is one transaction.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.exceptions import Abort, Exit, TyperException

from operator_core.actions.limits import MAX_AHEAD_DAYS, MAX_DELAY_SECONDS, MAX_RETRIES
from operator_core.actions.states import ActionStatus
from operator_core.env import default_actor
from operator_core.errors import ConfigError, DatabaseError, OperatorError, ValidationError

if TYPE_CHECKING:
    # Imported where used: ``operator tui`` draws its first frame before pydantic is
    # imported (the models, the registry, the executor; see operator_tui.app).
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.types import ActionProposal, WorkflowProposal
    from operator_core.subjects.base import Subject

T = TypeVar("T")

app = typer.Typer(
    name="operator",
    help="Human-in-the-loop execution of remediation actions against production.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
actions_app = typer.Typer(help="List and inspect actions.", no_args_is_help=True)
workflows_app = typer.Typer(help="List and inspect workflows.", no_args_is_help=True)
audit_app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)
ticket_app = typer.Typer(help="Open tickets that proposals answer.", no_args_is_help=True)
app.add_typer(actions_app, name="actions")
app.add_typer(workflows_app, name="workflows")
app.add_typer(audit_app, name="audit")
app.add_typer(ticket_app, name="ticket")

try:
    from operator_core.cli_secrets import app as secrets_app

    app.add_typer(secrets_app, name="secrets")
except ImportError:  # pragma: no cover - the secrets store ships with the runbook subjects
    pass


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "operator"


def default_db() -> Path:
    return state_dir() / "operator.db"


class Config:
    def __init__(
        self, db: Path | None, subject: str | None, approval_mode: str | None, actor: str | None
    ) -> None:
        self.db_explicit = db is not None or bool(os.environ.get("OPERATOR_DB"))
        self.db = Path(db or os.environ.get("OPERATOR_DB") or default_db()).expanduser()
        self.subject_spec = subject or os.environ.get("OPERATOR_SUBJECT") or "demo"
        self.approval_mode = _parse_bool_option(approval_mode, "--approval-mode")
        self.actor = actor or os.environ.get("OPERATOR_ACTOR") or default_actor()

    def require_db(self) -> None:
        if not self.db.exists():
            raise DatabaseError(
                f"no database at {self.db} (check --db / OPERATOR_DB; a proposal or "
                "'operator run' creates it)"
            )

    def executor(self, with_subject: bool = False, create: bool = False) -> ActionExecutor:
        from operator_core.actions.executor import ActionExecutor
        from operator_core.actions.registry import ActionRegistry

        if not create:
            self.require_db()
        registry = ActionRegistry()
        if with_subject:
            from operator_core.subjects.loader import load_subject

            registry = ActionRegistry.from_subject(load_subject(self.subject_spec))
        return ActionExecutor(self.db, registry, approval_mode=self.approval_mode)


def _parse_bool_option(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be on or off, not {value!r}")


def _cfg(ctx: typer.Context) -> Config:
    cfg = ctx.obj
    assert isinstance(cfg, Config)
    return cfg


def _run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _with_executor(
    cfg: Config,
    fn: Callable[[ActionExecutor], Awaitable[T]],
    with_subject: bool = False,
    create: bool = False,
) -> T:
    """Open the executor (the database must exist unless ``create``), run ``fn``, close."""
    executor = cfg.executor(with_subject, create)
    try:
        await executor.open()
        return await fn(executor)
    finally:
        await executor.close()
        if with_subject and executor.registry.subject is not None:
            await executor.registry.subject.aclose()


def _emit(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, sort_keys=True))


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str, option: str = "duration") -> float:
    """'90', '90s', '5m', '1h30m', '250ms' -> seconds; at most ten years (checked here, before
    any database is opened or created)."""
    s = text.strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValidationError(
            f"cannot read duration {text!r} of {option}: use e.g. 90s, 5m, 1h30m", option
        )
    if not total <= MAX_DELAY_SECONDS:  # also inf, from a few hundred digits
        raise ValidationError(f"{option} {text!r} is more than {MAX_AHEAD_DAYS} days "
                              "(ten years)", option)
    return total


def parse_params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--param {item!r} must look like KEY=VALUE", key or item)
        if key.strip() in out:
            raise ValidationError(f"parameter '{key.strip()}' given twice", key.strip())
        out[key.strip()] = value
    return out


def _fmt_time(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt else "-"


def _proposal_json(p: ActionProposal) -> dict[str, Any]:
    return p.model_dump(mode="json")


def _state_label(p: ActionProposal) -> str:
    if p.awaiting_approval:
        return "awaiting approval"
    if p.is_retry_waiting:
        return f"retry {p.retry_count}/{p.max_retries} at {_fmt_time(p.next_retry_at)}"
    if p.status == ActionStatus.VALIDATED and p.scheduled_at:
        return f"scheduled {_fmt_time(p.scheduled_at)}"
    if p.status == ActionStatus.CANCELLED and p.cancel_reason:
        return f"cancelled ({p.cancel_reason})"
    return p.status.value


# ---------------------------------------------------------------------- root


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        Path | None, typer.Option("--db", help="SQLite file (env OPERATOR_DB)", show_default=False)
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="demo | commands:FILE.toml | http:FILE.toml | module:Class"
                     " (env OPERATOR_SUBJECT)"),
    ] = None,
    approval_mode: Annotated[
        str | None,
        typer.Option("--approval-mode", help="on: every action needs approval "
                     "(env OPERATOR_APPROVAL_MODE)"),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who is acting (default user@host)")
    ] = None,
) -> None:
    ctx.obj = Config(db, subject, approval_mode, actor)


# ---------------------------------------------------------------------- proposing


@app.command()
def propose(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="Action name")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (required)")] = "",
    ticket: Annotated[int | None, typer.Option("--ticket", help="Ticket id")] = None,
    schedule_in: Annotated[
        str | None, typer.Option("--schedule-in", help="Run after DURATION (e.g. 5m)")
    ] = None,
    max_retries: Annotated[
        int | None, typer.Option("--max-retries", max=MAX_RETRIES)
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Cancel if unapproved after DURATION")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Propose an action; prints the new id."""
    cfg = _cfg(ctx)
    params = parse_params(param or [])
    delay = parse_duration(schedule_in, "--schedule-in") if schedule_in is not None else None
    expiry = parse_duration(expires_in, "--expires-in") if expires_in is not None else None

    async def go(ex: ActionExecutor) -> ActionProposal:
        return await ex.propose_action(
            action, params, reason, ticket_id=ticket, proposed_by=cfg.actor,
            schedule_in=delay, max_retries=max_retries, expires_in=expiry,
        )

    p = _run(_with_executor(cfg, go, with_subject=True, create=True))
    if as_json:
        _emit(_proposal_json(p))
    else:
        typer.echo(p.id)


@app.command("propose-workflow")
def propose_workflow(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Workflow name")],
    step: Annotated[
        list[str], typer.Option("--step", help="'ACTION KEY=VALUE ...' (repeat, in order);"
                                " 'delay=DURATION' waits after the previous step")
    ],
    description: Annotated[str, typer.Option("--description", help="What it achieves")] = "",
    ticket: Annotated[int | None, typer.Option("--ticket")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Propose an ordered chain of actions, approved once; prints the workflow id."""
    cfg = _cfg(ctx)
    recs = []
    for i, text in enumerate(step, start=1):
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise ValidationError(f"step {i}: {exc}", "step") from exc
        if not words:
            raise ValidationError(f"step {i} is empty", "step")
        params = parse_params(words[1:])
        delay = (parse_duration(str(params.pop("delay")), f"step {i} delay")
                 if "delay" in params else 0.0)
        recs.append({"action_name": words[0], "parameters": params, "delay_seconds": delay,
                     "reason": description})

    async def go(ex: ActionExecutor) -> tuple[int, list[ActionProposal]]:
        wf_id = await ex.propose_workflow(name, description, recs, ticket,
                                          proposed_by=cfg.actor)
        return wf_id, await ex.db.list_workflow_actions(wf_id)

    wf_id, steps = _run(_with_executor(cfg, go, with_subject=True, create=True))
    if as_json:
        _emit({"workflow_id": wf_id, "step_ids": [s.id for s in steps]})
    else:
        typer.echo(wf_id)


@ticket_app.command("open")
def ticket_open(
    ctx: typer.Context,
    title: Annotated[str, typer.Argument()],
    summary: Annotated[str, typer.Option("--summary")] = "",
    severity: Annotated[str, typer.Option("--severity")] = "medium",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open a ticket; prints its id."""
    cfg = _cfg(ctx)
    if severity not in ("low", "medium", "high", "critical"):
        raise ValidationError("--severity must be low, medium, high or critical", "severity")

    async def go(ex: ActionExecutor) -> Any:
        return await ex.open_ticket(title, summary, severity, cfg.actor)

    t = _run(_with_executor(cfg, go, create=True))
    if as_json:
        _emit(t.model_dump(mode="json"))
    else:
        typer.echo(t.id)


# ---------------------------------------------------------------------- decisions


def _decide(ctx: typer.Context, what: str, target: int, workflow: bool, reason: str = "") -> None:
    cfg = _cfg(ctx)

    async def go(ex: ActionExecutor) -> ActionProposal | WorkflowProposal:
        if workflow:
            if what == "approve":
                return await ex.approve_workflow(target, cfg.actor)
            if what == "reject":
                return await ex.reject_workflow(target, cfg.actor, reason)
            return await ex.cancel_workflow(target, cfg.actor, reason or "cancelled by operator")
        if what == "approve":
            return await ex.approve_proposal(target, cfg.actor)
        if what == "reject":
            return await ex.reject_proposal(target, cfg.actor, reason)
        return await ex.cancel_proposal(target, cfg.actor, reason or "cancelled by operator")

    result = _run(_with_executor(cfg, go))
    noun = "workflow" if workflow else "action"
    done = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}[what]
    if what == "cancel" and not workflow and result.status == ActionStatus.EXECUTING:
        typer.echo(f"{noun} {target}: stop requested; its runner cancels it within a second")
    else:
        typer.echo(f"{noun} {target} {done} by {cfg.actor}")


@app.command()
def approve(
    ctx: typer.Context,
    target: Annotated[int, typer.Argument(metavar="ID")],
    workflow: Annotated[bool, typer.Option("--workflow", help="ID is a workflow")] = False,
) -> None:
    """Approve an action (or, with --workflow, a whole workflow)."""
    _decide(ctx, "approve", target, workflow)


@app.command()
def reject(
    ctx: typer.Context,
    target: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required)")] = "",
    workflow: Annotated[bool, typer.Option("--workflow", help="ID is a workflow")] = False,
) -> None:
    """Reject an action or workflow; it is cancelled and never runs."""
    _decide(ctx, "reject", target, workflow, reason)


@app.command()
def cancel(
    ctx: typer.Context,
    target: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    workflow: Annotated[bool, typer.Option("--workflow", help="ID is a workflow")] = False,
) -> None:
    """Cancel a pending, scheduled, retry-waiting or running action (or a workflow)."""
    _decide(ctx, "cancel", target, workflow, reason)


@app.command("kill-switch")
def kill_switch(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stop everything: OBSERVE mode, cancel all pending and running work."""
    cfg = _cfg(ctx)
    if not yes:
        raise ValidationError("the kill switch cancels all pending and running work: "
                              "add --yes to pull it", "yes")
    result = _run(_with_executor(cfg, lambda ex: ex.kill_switch(cfg.actor)))
    if as_json:
        _emit(result.model_dump())
        return
    typer.echo(
        f"KILL SWITCH: safety mode OBSERVE; cancelled {len(result.cancelled_actions)} action(s)"
        f" and {len(result.cancelled_workflows)} workflow(s); "
        f"{len(result.executing_signalled)} running action(s) told to stop"
    )


@app.command()
def resume(
    ctx: typer.Context, yes: Annotated[bool, typer.Option("--yes", help="Confirm")] = False
) -> None:
    """Allow execution again (revives nothing that was cancelled)."""
    cfg = _cfg(ctx)
    if not yes:
        raise ValidationError("resume turns execution back on: add --yes to confirm", "yes")
    changed = _run(_with_executor(cfg, lambda ex: ex.resume(cfg.actor)))
    typer.echo("safety mode EXECUTE" + ("" if changed else " (it already was)"))


# ---------------------------------------------------------------------- reading


@actions_app.command("list")
def actions_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Newest actions first."""
    cfg = _cfg(ctx)
    st = None
    if status is not None:
        try:
            st = ActionStatus(status)
        except ValueError:
            raise ValidationError(
                f"unknown status {status!r}: use one of "
                + ", ".join(s.value for s in ActionStatus), "status") from None
    rows = _run(_with_executor(cfg, lambda ex: ex.db.list_proposals(st, limit=limit)))
    if as_json:
        _emit([_proposal_json(p) for p in rows])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("ID", "ACTION", "PARAMETERS", "STATE", "WF", "PROPOSED", "BY"):
        table.add_column(col)
    for p in rows:
        table.add_row(
            str(p.id), p.action_name,
            " ".join(f"{k}={v}" for k, v in p.parameters.items()),
            _state_label(p), str(p.workflow_id or ""), _fmt_time(p.proposed_at), p.proposed_by,
        )
    Console().print(table)


@actions_app.command("show")
def actions_show(
    ctx: typer.Context,
    target: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One action with its records and audit events."""
    cfg = _cfg(ctx)

    async def go(ex: ActionExecutor) -> dict[str, Any]:
        p = await ex.require_proposal(target)
        records = await ex.db.list_records(target)
        events = await ex.db.list_audit_events(proposal_id=target, limit=200)
        ticket = await ex.db.get_ticket(p.ticket_id) if p.ticket_id else None
        subject = ex.registry.subject
        preview = None
        if subject is not None and p.action_name in ex.registry:
            preview = subject.preview(p.action_name, p.parameters)
        return {
            "action": _proposal_json(p),
            "preview": preview,
            "records": [r.model_dump(mode="json") for r in records],
            "audit": [e.model_dump(mode="json") for e in events],
            "ticket": ticket.model_dump(mode="json") if ticket else None,
        }

    data = _run(_with_executor(cfg, go, with_subject=True))
    if as_json:
        _emit(data)
        return
    a = data["action"]
    typer.echo(f"action {a['id']}: {a['action_name']}  [{a['status']}]")
    for key in ("parameters", "reason", "proposed_by", "proposed_at", "requires_approval",
                "approved_by", "approved_at", "rejected_by", "rejection_reason",
                "workflow_id", "scheduled_at", "retry_count", "max_retries", "next_retry_at",
                "last_error", "cancel_reason", "expires_at"):
        if a.get(key) not in (None, "", {}):
            typer.echo(f"  {key}: {a[key]}")
    if data["ticket"]:
        typer.echo(f"  ticket: #{data['ticket']['id']} {data['ticket']['title']}")
    if data["preview"]:
        typer.echo(f"  will run: {data['preview']}")
    typer.echo("records:")
    for r in data["records"]:
        outcome = {True: "ok", False: "failed", None: "running"}[r["success"]]
        typer.echo(f"  attempt {r['attempt']}: {outcome} {r['started_at']} -> "
                   f"{r['completed_at']} {r['error_message'] or ''}")
    typer.echo("audit:")
    for e in data["audit"]:
        typer.echo(f"  {e['timestamp']} {e['event_type']} by {e['actor']} "
                   f"{json.dumps(e['event_data'], default=str)}")


@workflows_app.command("list")
def workflows_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Newest workflows first."""
    cfg = _cfg(ctx)

    async def go(ex: ActionExecutor) -> list[tuple[WorkflowProposal, list[ActionProposal]]]:
        wfs = await ex.db.list_workflows(limit=limit)
        steps = await ex.db.list_workflow_steps([w.id for w in wfs if w.id is not None])
        return [(w, steps.get(w.id or 0, [])) for w in wfs]

    rows = _run(_with_executor(cfg, go))
    if as_json:
        _emit([{**w.model_dump(mode="json"), "steps": [_proposal_json(s) for s in st]}
               for w, st in rows])
        return
    for w, st in rows:
        done = sum(1 for s in st if s.status == ActionStatus.COMPLETED)
        approval = "approved" if w.approved_at else (
            "awaiting approval" if w.requires_approval and w.status.value == "pending" else "")
        typer.echo(f"{w.id}\t{w.name}\t{w.status.value}\t{done}/{len(st)} steps\t{approval}")


@workflows_app.command("show")
def workflows_show(
    ctx: typer.Context,
    target: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One workflow with its steps."""
    cfg = _cfg(ctx)

    async def go(ex: ActionExecutor) -> tuple[WorkflowProposal, list[ActionProposal]]:
        wf = await ex.require_workflow(target)
        return wf, await ex.db.list_workflow_actions(target)

    wf, steps = _run(_with_executor(cfg, go))
    if as_json:
        _emit({**wf.model_dump(mode="json"), "steps": [_proposal_json(s) for s in steps]})
        return
    typer.echo(f"workflow {wf.id}: {wf.name}  [{wf.status.value}]  {wf.description}")
    if wf.approved_by:
        typer.echo(f"  approved by {wf.approved_by} at {_fmt_time(wf.approved_at)}")
    for s in steps:
        params = " ".join(f"{k}={v}" for k, v in s.parameters.items())
        typer.echo(f"  {s.execution_order + 1}. #{s.id} {s.action_name} {params}  "
                   f"[{_state_label(s)}]")


@audit_app.command("tail")
def audit_tail(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("-n", "--lines")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest audit events."""
    cfg = _cfg(ctx)
    events = _run(_with_executor(cfg, lambda ex: ex.db.list_audit_events(limit=lines)))
    if as_json:
        _emit([e.model_dump(mode="json") for e in events])
        return
    for e in events:
        target = f"action {e.proposal_id}" if e.proposal_id else (
            f"workflow {e.workflow_id}" if e.workflow_id else "-")
        typer.echo(f"{e.id}\t{_fmt_time(e.timestamp)}\t{e.event_type}\t{target}\t{e.actor}\t"
                   f"{json.dumps(e.event_data, default=str, sort_keys=True)}")


@audit_app.command("verify")
def audit_verify(ctx: typer.Context) -> None:
    """Recompute the audit hash chain; exit 1 if it was tampered with."""
    cfg = _cfg(ctx)
    ok, _count, message = _run(_with_executor(cfg, lambda ex: ex.auditor.verify()))
    if not ok:
        raise OperatorError(f"audit log TAMPERED: {message}")
    typer.echo(f"audit log OK: {message}")


@app.command()
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Safety mode, counts and activity sparklines."""
    cfg = _cfg(ctx)

    async def go(ex: ActionExecutor) -> dict[str, Any]:
        mode, at, by, reason = await ex.db.get_safety_mode()
        counts = await ex.db.counts()
        done, failed = await ex.db.activity(60)
        return {
            "db": str(cfg.db),
            "safety_mode": mode,
            "mode_changed_by": by,
            "mode_changed_at": at.isoformat() if at else None,
            "mode_reason": reason,
            "approval_mode": ex.approval_mode,
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

    data = _run(_with_executor(cfg, go))
    if as_json:
        _emit(data)
        return
    from sparklines import sparklines

    mode = data["safety_mode"].upper()
    banner = "EXECUTE" if mode == "EXECUTE" else f"OBSERVE (execution off: {data['mode_reason']}"\
        f", by {data['mode_changed_by']})"
    typer.echo(f"database      {data['db']}")
    typer.echo(f"safety mode   {banner}")
    typer.echo(f"approval mode {'on' if data['approval_mode'] else 'off'}")
    typer.echo(f"awaiting approval {data['awaiting_approval']} action(s), "
               f"{data['workflows_awaiting_approval']} workflow(s)")
    typer.echo(f"executing {data['executing']}  scheduled {data['scheduled']}  "
               f"retry-waiting {data['retry_waiting']}  open workflows {data['workflows_open']}")
    typer.echo("by status     " + "  ".join(f"{k} {v}" for k, v in
                                             sorted(data["by_status"].items())))
    peak = max(1, *data["executions_per_minute"])
    for label, key in (("executions/min (1h)", "executions_per_minute"),
                       ("failures/min   (1h)", "failures_per_minute")):
        line = sparklines(data[key], minimum=0, maximum=peak)[0]
        typer.echo(f"{label} {line} total {sum(data[key])}")


# ---------------------------------------------------------------------- running


@app.command()
def run(
    ctx: typer.Context,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once nothing is executing or due")
    ] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1)] = 4,
    lease_seconds: Annotated[float, typer.Option("--lease-seconds", min=1.0)] = 30.0,
    grace_seconds: Annotated[float, typer.Option("--grace-seconds", min=0.0)] = 10.0,
) -> None:
    """Run the runner: execute approved, due work until stopped (SIGINT/SIGTERM)."""
    from operator_core.runner import Runner

    cfg = _cfg(ctx)

    async def go(ex: ActionExecutor) -> Any:
        runner = Runner(ex, concurrency=concurrency, lease_seconds=lease_seconds,
                        grace_seconds=grace_seconds)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runner.request_stop)
        if not until_idle:
            typer.echo(f"runner {runner.runner_id} on {cfg.db} (concurrency {concurrency})",
                       err=True)
        return await runner.run(until_idle=until_idle)

    stats = _run(_with_executor(cfg, go, with_subject=True, create=True))
    typer.echo(f"runner done: {stats.completed} completed, {stats.failed} failed, "
               f"{stats.cancelled} cancelled, {len(stats.recovered)} recovered", err=True)


@app.command()
def tui(
    ctx: typer.Context,
    read_only: Annotated[bool, typer.Option("--read-only", help="Disable every mutation")] = False,
) -> None:
    """Open the dashboard."""
    cfg = _cfg(ctx)
    _open_db_or_fail(cfg)
    from operator_tui import load_app

    def subject() -> Subject:
        # After the first frame (a subject's module and definitions import pydantic); a
        # bad --subject ends the dashboard with its one-line error.
        from operator_core.subjects.loader import load_subject

        return load_subject(cfg.subject_spec)

    tui_app = load_app()(cfg.db, read_only=read_only, approval_mode=cfg.approval_mode,
                          actor=cfg.actor, subject_loader=subject)
    tui_app.run()
    if tui_app.return_code:
        raise typer.Exit(tui_app.return_code)


def _open_db_or_fail(cfg: Config) -> None:
    """Surface a missing, locked, corrupt or too-new database as one line before a screen
    opens (through ActionDB alone: the executor's imports come after the first frame)."""
    from operator_core.db.actions import ActionDB

    cfg.require_db()

    async def check() -> None:
        async with ActionDB(cfg.db) as db:
            await db.data_version()

    _run(check())


@app.command()
def demo(
    ctx: typer.Context,
    headless: Annotated[
        bool, typer.Option("--headless", help="No screen; print a summary")
    ] = False,
    duration: Annotated[float, typer.Option("--duration", help="Seconds (headless)")] = 30.0,
    speed: Annotated[float, typer.Option("--speed", help="Simulation speed factor")] = 1.0,
    reset: Annotated[bool, typer.Option("--reset", help="Wipe an existing --db first")] = False,
) -> None:
    """The demo: simulated cluster, agent, runner and dashboard on a fresh database."""
    from operator_core.demo import prepare_demo_db, run_demo

    cfg = _cfg(ctx)
    db = cfg.db if cfg.db_explicit else state_dir() / "demo.db"
    prepare_demo_db(db, wipe=reset or not cfg.db_explicit)
    if headless:
        summary = _run(
            run_demo(db, duration=duration, speed=speed, approval_mode=cfg.approval_mode)
        )
        typer.echo(summary)
        return
    from operator_tui import load_app

    from operator_core.demo import demo_background

    subject, background = demo_background(db, speed=speed, approval_mode=cfg.approval_mode)
    tui_app = load_app()(db, subject=subject, background=background,
                          approval_mode=cfg.approval_mode, actor=cfg.actor)
    tui_app.run()
    if tui_app.return_code:
        raise typer.Exit(tui_app.return_code)


# ---------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every expected error is one line on stderr."""
    try:
        # Outside standalone mode, click returns the code of a typer.Exit rather than raise.
        code = app(args=argv, standalone_mode=False)
    except OperatorError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    except Abort:
        typer.echo("aborted", err=True)
        return 130
    except TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            app(args=["--help"], standalone_mode=False)
            return 2
        typer.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code or 2
    except Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
