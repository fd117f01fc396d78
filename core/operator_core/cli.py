"""The ``operator`` command: a thin face over ActionExecutor.

Every error the engine raises becomes one line on stderr and a non-zero exit; nothing is
half-written because every change is one transaction.
"""

from __future__ import annotations

import asyncio
import json
import math
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
from operator_core.env import parse_bool
from operator_core.errors import ConfigError, DatabaseError, OperatorError, ValidationError
from operator_core.identity import actor_text, current_identity
from operator_core.model.states import ActionStatus
from operator_core.safe_text import has_surrogates, visible

if TYPE_CHECKING:
    # Imported where used: ``operator tui`` draws its first frame before pydantic is
    # imported (the models, the registry, the executor; see operator_tui.app).
    from operator_core.actions.executor import ActionExecutor, Decision, TargetKind
    from operator_core.actions.subject import Subject
    from operator_core.model.types import ActionProposal, KillSwitchResult, WorkflowProposal

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
policy_app = typer.Typer(
    help="Show or change the database's approval policy.", no_args_is_help=True
)
ticket_app = typer.Typer(help="Open tickets that proposals answer.", no_args_is_help=True)
app.add_typer(actions_app, name="actions")
app.add_typer(workflows_app, name="workflows")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
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
        self.approval_mode = (
            None if approval_mode is None else parse_bool(approval_mode, "--approval-mode")
        )
        self.identity = current_identity().text
        # A label recorded beside the OS identity; never who the four-eyes rule sees.
        self.actor = (actor or os.environ.get("OPERATOR_ACTOR") or "").strip() or self.identity

    @property
    def who(self) -> str:
        """The identity and label, as the audit log shows them."""
        return actor_text(self.actor, self.identity)

    def require_db(self) -> None:
        if not self.db.exists():
            raise DatabaseError(
                f"no database at {self.db} (check --db / OPERATOR_DB; a proposal or "
                "'operator run' creates it)"
            )

    def executor(
        self, with_subject: bool = False, create: bool = False, seed_policy: bool = True
    ) -> ActionExecutor:
        from operator_core.actions.executor import ActionExecutor
        from operator_core.actions.registry import ActionRegistry

        if not create:
            self.require_db()
        registry = ActionRegistry()
        if with_subject:
            from operator_core.subjects.loader import load_subject

            registry = ActionRegistry.from_subject(load_subject(self.subject_spec))
        return ActionExecutor(
            self.db, registry, approval_mode=self.approval_mode, seed_policy=seed_policy
        )


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
    seed_policy: bool = False,
) -> T:
    """Open the executor (the database must exist unless ``create``), run ``fn``, close.
    With ``seed_policy`` (the commands that start or allow work: propose, approve, resume,
    run) the environment's policy settings seed a new database and must agree with an
    existing one's; the others (reading, cancelling, the kill switch) work whatever they
    say."""
    executor = cfg.executor(with_subject, create, seed_policy)
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
        raise ValidationError(
            f"{option} {text!r} is more than {MAX_AHEAD_DAYS} days (ten years)", option
        )
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


def _check_number(value: float, option: str, low: float, high: float, above: bool = False) -> None:
    """Click lets nan and inf through its range checks (nan < 1 is false)."""
    if not math.isfinite(value) or value < low or (above and value == low) or value > high:
        span = f"above {low:g} and at most" if above else f"from {low:g} to"
        raise ValidationError(f"{option} must be a number {span} {high:g}, not {value}", option)


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _params_line(parameters: dict[str, Any]) -> str:
    return " ".join(f"{k}={_param_text(v)}" for k, v in parameters.items())


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
        return f"cancelled ({visible(p.cancel_reason)})"
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
        typer.Option(
            "--subject",
            help="demo | commands:FILE.toml | http:FILE.toml | module:Class (env OPERATOR_SUBJECT)",
        ),
    ] = None,
    approval_mode: Annotated[
        str | None,
        typer.Option(
            "--approval-mode",
            help="Seeds a new database's policy: on = every "
            "action needs approval (env OPERATOR_APPROVAL_MODE; see 'policy')",
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            help="A label recorded beside your OS identity "
            "(env OPERATOR_ACTOR); never changes who you are",
        ),
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
    max_retries: Annotated[int | None, typer.Option("--max-retries", max=MAX_RETRIES)] = None,
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
            action,
            params,
            reason,
            ticket_id=ticket,
            proposed_by=cfg.actor,
            schedule_in=delay,
            max_retries=max_retries,
            expires_in=expiry,
        )

    p = _run(_with_executor(cfg, go, with_subject=True, create=True, seed_policy=True))
    if as_json:
        _emit(_proposal_json(p))
    else:
        typer.echo(p.id)


@app.command("propose-workflow")
def propose_workflow(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Workflow name")],
    step: Annotated[
        list[str],
        typer.Option(
            "--step",
            help="'ACTION KEY=VALUE ...' (repeat, in order);"
            " 'delay=DURATION' waits after the previous step",
        ),
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
        delay = (
            parse_duration(str(params.pop("delay")), f"step {i} delay")
            if "delay" in params
            else 0.0
        )
        recs.append(
            {
                "action_name": words[0],
                "parameters": params,
                "delay_seconds": delay,
                "reason": description,
            }
        )

    async def go(ex: ActionExecutor) -> tuple[int, list[ActionProposal]]:
        wf_id = await ex.propose_workflow(name, description, recs, ticket, proposed_by=cfg.actor)
        return wf_id, await ex.db.list_workflow_actions(wf_id)

    wf_id, steps = _run(_with_executor(cfg, go, with_subject=True, create=True, seed_policy=True))
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


def _decide(
    ctx: typer.Context, what: Decision, target: int, workflow: bool, reason: str = ""
) -> None:
    cfg = _cfg(ctx)
    kind: TargetKind = "workflow" if workflow else "action"

    async def go(ex: ActionExecutor) -> ActionProposal | WorkflowProposal:
        return await ex.decide(what, kind, target, cfg.actor, reason or None)

    result = _run(_with_executor(cfg, go, seed_policy=what == "approve"))
    done = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}[what]
    if what == "cancel" and not workflow and result.status == ActionStatus.EXECUTING:
        typer.echo(f"{kind} {target}: stop requested; its runner cancels it within a second")
    else:
        typer.echo(f"{kind} {target} {done} by {visible(cfg.who)}")


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
    """Stop everything: OBSERVE mode, cancel all pending and running work (at once, even
    while another process holds the database's write lock)."""
    cfg = _cfg(ctx)
    if not yes:
        raise ValidationError(
            "the kill switch cancels all pending and running work: add --yes to pull it", "yes"
        )

    async def go() -> KillSwitchResult:
        # Not opened first: the kill file works even when the database cannot be opened.
        executor = cfg.executor()
        try:
            return await executor.kill_switch(cfg.actor)
        finally:
            await executor.close()

    result = _run(go())
    if as_json:
        _emit(result.model_dump(mode="json"))
        return
    if result.kill_file is None:
        typer.echo(
            f"warning: {result.database_error}; the database alone holds the switch", err=True
        )
    else:
        typer.echo(
            f"KILL SWITCH engaged at {_fmt_time(result.engaged_at)} ({result.kill_file}):"
            " runners start nothing new and stop what is executing within a second"
        )
    if result.recorded:
        typer.echo(
            f"database: safety mode OBSERVE; cancelled {len(result.cancelled_actions)} "
            f"action(s) and {len(result.cancelled_workflows)} workflow(s); "
            f"{len(result.executing_signalled)} running action(s) told to stop"
        )
    else:
        typer.echo(
            f"database busy ({result.database_error}): it records OBSERVE and cancels "
            "all pending work as soon as its lock frees (the first runner or command "
            "that can write does it); execution is off meanwhile"
        )


@app.command()
def resume(
    ctx: typer.Context, yes: Annotated[bool, typer.Option("--yes", help="Confirm")] = False
) -> None:
    """Allow execution again (revives nothing that was cancelled)."""
    cfg = _cfg(ctx)
    if not yes:
        raise ValidationError("resume turns execution back on: add --yes to confirm", "yes")
    changed = _run(_with_executor(cfg, lambda ex: ex.resume(cfg.actor), seed_policy=True))
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
                + ", ".join(s.value for s in ActionStatus),
                "status",
            ) from None
    rows = _run(_with_executor(cfg, lambda ex: ex.db.list_proposals(st, limit=limit)))
    if as_json:
        _emit([_proposal_json(p) for p in rows])
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
            _params_line(p.parameters),
            _state_label(p),
            str(p.workflow_id or ""),
            _fmt_time(p.proposed_at),
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
    cfg = _cfg(ctx)

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
            "action": _proposal_json(p),
            "preview": preview,
            "records": [r.model_dump(mode="json") for r in records],
            "audit": [e.model_dump(mode="json") for e in events],
            "ticket": ticket.model_dump(mode="json") if ticket else None,
            "identities": await ex.db.read(identities, False, target),
        }

    data = _run(_with_executor(cfg, go, with_subject=True))
    if as_json:
        _emit(data)
        return
    # Every value is escaped onto its own line: a parameter with a newline cannot forge a
    # "will run:" or "reason:" line of what the approver reads.
    a = data["action"]
    typer.echo(f"action {a['id']}: {visible(a['action_name'])}  [{a['status']}]")
    if a["parameters"]:
        typer.echo("  parameters:")
        for name, value in a["parameters"].items():
            typer.echo(f"    {visible(name)} = {visible(_param_text(value))}")
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
    cfg = _cfg(ctx)

    async def go(ex: ActionExecutor) -> list[tuple[WorkflowProposal, list[ActionProposal]]]:
        wfs = await ex.db.list_workflows(limit=limit)
        steps = await ex.db.list_workflow_steps([w.id for w in wfs if w.id is not None])
        return [(w, steps.get(w.id or 0, [])) for w in wfs]

    rows = _run(_with_executor(cfg, go))
    if as_json:
        _emit(
            [
                {**w.model_dump(mode="json"), "steps": [_proposal_json(s) for s in st]}
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
    cfg = _cfg(ctx)

    async def go(ex: ActionExecutor) -> tuple[WorkflowProposal, list[ActionProposal], Any]:
        from operator_core.db.policy import identities

        wf = await ex.require_workflow(target)
        return (
            wf,
            await ex.db.list_workflow_actions(target),
            await ex.db.read(identities, True, target),
        )

    wf, steps, who = _run(_with_executor(cfg, go))
    if as_json:
        _emit(
            {
                **wf.model_dump(mode="json"),
                "steps": [_proposal_json(s) for s in steps],
                "identities": who,
            }
        )
        return
    typer.echo(
        f"workflow {wf.id}: {visible(wf.name)}  [{wf.status.value}]  {visible(wf.description)}"
    )
    if wf.approved_by:
        approver = actor_text(wf.approved_by, who["approved_identity"] or "?")
        typer.echo(f"  approved by {visible(approver)} at {_fmt_time(wf.approved_at)}")
    for s in steps:
        typer.echo(
            f"  {s.execution_order + 1}. #{s.id} {visible(s.action_name)} "
            f"{visible(_params_line(s.parameters))}  [{_state_label(s)}]"
        )


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
        target = (
            f"action {e.proposal_id}"
            if e.proposal_id
            else (f"workflow {e.workflow_id}" if e.workflow_id else "-")
        )
        typer.echo(
            f"{e.id}\t{_fmt_time(e.timestamp)}\t{visible(e.event_type)}\t{target}\t"
            f"{visible(e.actor)}\t"
            f"{json.dumps(e.event_data, default=str, sort_keys=True)}"
        )


@audit_app.command("verify")
def audit_verify(ctx: typer.Context) -> None:
    """Recompute the audit hash chain; exit 1 if it was tampered with."""
    cfg = _cfg(ctx)
    ok, _count, message = _run(_with_executor(cfg, lambda ex: ex.auditor.verify()))
    if not ok:
        raise OperatorError(f"audit log TAMPERED: {message}")
    typer.echo(f"audit log OK: {visible(message)}")


@app.command()
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Safety mode, counts and activity sparklines."""
    cfg = _cfg(ctx)

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

    data = _run(_with_executor(cfg, go))
    if as_json:
        _emit(data)
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


# ---------------------------------------------------------------------- policy


_POLICY_SETTINGS = {"approval-mode": "approval_mode", "four-eyes": "four_eyes"}


def _policy_lines(data: dict[str, Any]) -> list[str]:
    return [
        f"approval-mode {'on' if data['approval_mode'] else 'off'}",
        f"four-eyes     {'on' if data['four_eyes'] else 'off'}",
        f"set by        {data['policy_changed_by'] or '-'} at {data['policy_changed_at'] or '-'}",
        f"you are       {data['identity']}",
    ]


@policy_app.command("show")
def policy_show(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """The database's approval policy (every process follows it)."""
    cfg = _cfg(ctx)

    async def go(ex: ActionExecutor) -> dict[str, Any]:
        return {**(await ex.policy()).as_dict(), "identity": ex.identity}

    data = _run(_with_executor(cfg, go))
    if as_json:
        _emit(data)
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
    cfg = _cfg(ctx)
    name = _POLICY_SETTINGS.get(setting.strip().lower())
    if name is None:
        raise ValidationError(
            f"unknown policy setting {setting!r}: use approval-mode or four-eyes", "setting"
        )
    on = parse_bool(value, setting)
    changed = _run(
        _with_executor(cfg, lambda ex: ex.set_policy(name, on, cfg.actor, reason), create=True)
    )
    state = "on" if on else "off"
    typer.echo(f"{setting} {state}" + (f" (set by {cfg.who})" if changed else " (it already was)"))


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
    _check_number(lease_seconds, "--lease-seconds", 1, 86400)
    _check_number(grace_seconds, "--grace-seconds", 0, 86400)

    async def go(ex: ActionExecutor) -> Any:
        runner = Runner(
            ex, concurrency=concurrency, lease_seconds=lease_seconds, grace_seconds=grace_seconds
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runner.request_stop)
        if not until_idle:
            typer.echo(
                f"runner {visible(runner.runner_id)} on {visible(cfg.db)} "
                f"(concurrency {concurrency})",
                err=True,
            )
        return await runner.run(until_idle=until_idle)

    stats = _run(_with_executor(cfg, go, with_subject=True, create=True, seed_policy=True))
    typer.echo(
        f"runner done: {stats.completed} completed, {stats.failed} failed, "
        f"{stats.cancelled} cancelled, {len(stats.recovered)} recovered",
        err=True,
    )


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

    tui_app = load_app()(
        cfg.db,
        read_only=read_only,
        approval_mode=cfg.approval_mode,
        actor=cfg.actor,
        subject_loader=subject,
    )
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
    _check_number(duration, "--duration", 0, 7 * 86400, above=True)
    _check_number(speed, "--speed", 0, 1000, above=True)
    db = cfg.db if cfg.db_explicit else state_dir() / "demo.db"
    prepare_demo_db(db, wipe=reset or not cfg.db_explicit)
    if headless:
        summary = _run(
            run_demo(db, duration=duration, speed=speed, approval_mode=cfg.approval_mode)
        )
        typer.echo("\n".join(visible(line) for line in summary.splitlines()))
        return
    from operator_tui import load_app

    from operator_core.demo import demo_background

    subject, background = demo_background(db, speed=speed, approval_mode=cfg.approval_mode)
    tui_app = load_app()(
        db, subject=subject, background=background, approval_mode=cfg.approval_mode, actor=cfg.actor
    )
    tui_app.run()
    if tui_app.return_code:
        raise typer.Exit(tui_app.return_code)


# ---------------------------------------------------------------------- entry point


def _check_utf8(argv: list[str]) -> None:
    """Refuse arguments and OPERATOR_* settings that are not UTF-8: Python keeps such bytes
    as lone surrogates, which SQLite and JSON cannot store and a terminal cannot print."""
    for i, arg in enumerate(argv):
        if has_surrogates(arg):
            option, eq, value = arg.partition("=")
            if eq and option.startswith("--"):
                what = option
            elif i > 0 and argv[i - 1].startswith("-") and not arg.startswith("-"):
                what, value = argv[i - 1], arg
            else:
                what, value = f"argument {i + 1}", arg
            raise ValidationError(
                f"{visible(what)} is not valid UTF-8 text: '{visible(value)}'", what
            )
    for name, value in os.environ.items():
        if name.startswith("OPERATOR_") and has_surrogates(value):
            raise ConfigError(f"{visible(name)} is not valid UTF-8 text: '{visible(value)}'")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every expected error is one line on stderr."""
    try:
        _check_utf8(sys.argv[1:] if argv is None else argv)
        # Outside standalone mode, click returns the code of a typer.Exit rather than raise.
        code = app(args=argv, standalone_mode=False)
    except OperatorError as exc:
        typer.echo(f"error: {visible(exc)}", err=True)
        return 1
    except Abort:
        typer.echo("aborted", err=True)
        return 130
    except TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            app(args=["--help"], standalone_mode=False)
            return 2
        typer.echo(f"error: {visible(exc.format_message())}", err=True)
        return exc.exit_code or 2
    except Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
