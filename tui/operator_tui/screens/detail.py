"""The detail view of one action or workflow: parameters, what will run, reason, ticket, every
attempt's record and its audit events. ``a``/``r``/``c`` act on the item shown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from operator_core.actions.fingerprint import ApprovalCheck, of_subject
from operator_core.db import executions as execution_db
from operator_core.db import fingerprints
from operator_core.safe_text import visible
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from operator_tui.data import Target
from operator_tui.format import (
    approval_state,
    clock_time,
    full_time,
    plain,
    plain_lines,
    pretty_json,
    step_state,
)
from operator_tui.widgets.event_tail import describe

if TYPE_CHECKING:
    from operator_core.db.actions import ActionDB
    from operator_core.db.executions import ProposalOrigin
    from operator_core.model.types import (
        ActionProposal,
        ActionRecord,
        AuditEvent,
        Ticket,
        WorkflowProposal,
    )
    from operator_core.subjects.base import Subject

AUDIT_LIMIT = 200


def _add_row(table: Table, *cells: RenderableType) -> None:
    """Rich reads a str cell as markup: an agent's parameters, reason or error (say
    ``[Errno 111]`` or ``[black on black]...``) would lose words or hide them. Shown as
    written instead."""
    table.add_row(*(plain(c) if isinstance(c, str) else c for c in cells))


def _fields(rows: list[tuple[str, RenderableType]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=12)
    table.add_column(overflow="fold")
    for name, value in rows:
        _add_row(table, name, value)
    return table


def exit_status(result: dict[str, Any] | None) -> str:
    """A command's exit code or an HTTP answer's status, as a runbook attempt records it."""
    if not result:
        return ""
    if result.get("exit_code") is not None:
        code = result["exit_code"]
        return f"exit {code}" if code >= 0 else f"signal {-code}"
    if result.get("status") is not None:
        return f"HTTP {result['status']}"
    return ""


OUTPUTS = (("stdout_tail", "stdout"), ("stderr_tail", "stderr"), ("body", "response body"))


def _records(records: list[ActionRecord]) -> RenderableType:
    """Every attempt: when, how it ended (its exit code or HTTP status), its error; then the
    tails of its output, as the runner kept them."""
    if not records:
        return Text("no attempts yet", style="dim")
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("Attempt", "Started", "Finished", "Outcome", "Exit", "Error / result"):
        table.add_column(column, overflow="fold")
    outputs: list[RenderableType] = []
    for r in records:
        outcome = "running" if r.success is None else "✓ ok" if r.success else "✗ failed"
        result = r.result_data or {}
        tails = [(name, result[key]) for key, name in OUTPUTS if result.get(key)]
        shown = {k: v for k, v in result.items() if k not in {key for key, _ in OUTPUTS}}
        detail = r.error_message or (plain_lines(pretty_json(shown)) if shown else "")
        _add_row(
            table,
            str(r.attempt),
            full_time(r.started_at),
            clock_time(r.completed_at),
            outcome,
            exit_status(result),
            detail,
        )
        for name, tail in tails:
            outputs.append(Text(f"attempt {r.attempt} {name} (last lines)", style="bold"))
            outputs.append(plain_lines(str(tail).rstrip("\n")))
    return Group(table, *([Text("")] + outputs if outputs else []))


def _audit(events: list[AuditEvent]) -> RenderableType:
    if not events:
        return Text("no events", style="dim")
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("Time (UTC)", "Event", "Actor", "Detail"):
        table.add_column(column, overflow="fold")
    for e in events:
        _add_row(table, full_time(e.timestamp), e.event_type, e.actor, describe(e))
    return table


def _ticket(ticket: Ticket | None) -> RenderableType:
    if ticket is None:
        return Text("—", style="dim")
    return Text.assemble(
        (f"#{ticket.id} {visible(ticket.title)}", "bold"),
        f"  [{ticket.severity}, {ticket.status}]\n",
        visible(ticket.summary),
    )


def with_approval(
    rows: list[tuple[str, RenderableType]], check: ApprovalCheck
) -> list[tuple[str, RenderableType]]:
    """After "Will run": what the approval is bound to and whether it still holds (the
    approved command itself only when it may differ), and why the last one was voided."""
    extra: list[tuple[str, RenderableType]] = []
    if check.voided:
        extra.append(("Approval voided", Text(visible(check.voided), style="bold yellow")))
    if check.sha256 is not None:
        style = {True: "green", False: "bold red", None: "dim"}[check.matches]
        extra.append(("Fingerprint", Text(f"{check.short}  {visible(check.state)}", style=style)))
        if check.runs and check.matches is not True:
            extra.append(("Approved run", plain_lines(check.runs)))
    at = next((i + 1 for i, (name, _) in enumerate(rows) if name == "Will run"), len(rows))
    return rows[:at] + extra + rows[at:]


class DetailScreen(Screen[None]):
    FOLLOWS_DASHBOARD = True
    """The app calls ``reload`` after each read of the dashboard's data."""

    BINDINGS = [Binding("escape,backspace", "close", "Back", key_display="esc")]

    def __init__(self, target: Target, db: ActionDB, subject: Callable[[], Subject | None]) -> None:
        """``subject``: the dashboard's subject, if loaded yet (for its preview)."""
        super().__init__()
        self.target = target
        self.loaded = asyncio.Event()
        self._db = db
        self._subject = subject

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(Text(visible(self.target.label), style="bold"), id="detail-title")
            yield Static("loading…", id="detail-body")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def current_target(self) -> Target | None:
        return self.target

    def action_close(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="detail")
    async def reload(self) -> None:
        db = self._db
        if self.target.kind == "action":
            body = await self._action_body(db, self.target.id)
        else:
            body = await self._workflow_body(db, self.target.id)
        self.query_one("#detail-body", Static).update(body)
        self.loaded.set()

    async def _action_body(self, db: ActionDB, proposal_id: int) -> RenderableType:
        p = await db.get_proposal(proposal_id)
        if p is None:
            return Text(f"action #{proposal_id} no longer exists", style="bold red")
        self.query_one("#detail-title", Static).update(
            Text.assemble(
                (f"Action #{p.id} {visible(p.action_name)}", "bold"),
                "  ",
                step_state(p, db.clock.now()),
            )
        )
        ticket = await db.get_ticket(p.ticket_id) if p.ticket_id else None
        records = await db.list_records(proposal_id)
        events = await db.list_audit_events(proposal_id=proposal_id, limit=AUDIT_LIMIT)
        origin = await db.read(execution_db.proposal_origin, proposal_id)
        approval = await self._approval(db, p)
        return Group(
            _fields(with_approval(self._action_fields(p, origin), approval)),
            Text(""),
            _section("Ticket"),
            _ticket(ticket),
            Text(""),
            _section(f"Attempts ({len(records)})"),
            _records(records),
            Text(""),
            _section(f"Audit events ({len(events)})"),
            _audit(events),
        )

    async def _approval(self, db: ActionDB, p: ActionProposal) -> ApprovalCheck:
        """The approval's fingerprint, and whether what the dashboard's subject would run
        now still matches it."""
        bound = await db.read(fingerprints.binding, p.id or 0)
        now = None
        if bound.sha256 is not None:
            try:
                now = of_subject(self._subject(), p.action_name, dict(p.parameters))
            except Exception:  # a subject's preview must never break the view
                now = None
        return ApprovalCheck.of(bound, now, self._subject() is not None)

    def _action_fields(
        self, p: ActionProposal, origin: ProposalOrigin | None = None
    ) -> list[tuple[str, RenderableType]]:
        preview = None
        subject = self._subject()
        if subject is not None:
            try:
                preview = subject.preview(p.action_name, dict(p.parameters))
            except Exception as exc:  # a subject's preview must never break the view
                preview = f"(preview failed: {exc})"
        status = p.status.value + (f" — {p.cancel_reason}" if p.cancel_reason else "")
        rows: list[tuple[str, RenderableType]] = [
            ("Status", status),
            (
                "Approval",
                approval_state(p)
                + (f" at {full_time(p.approved_at)}" if p.approved_at else "")
                + (f": {p.rejection_reason}" if p.rejection_reason else ""),
            ),
            ("Proposed", f"{full_time(p.proposed_at)} by {p.proposed_by}"),
        ]
        if origin is not None:
            # Why the action exists: the approver sees the automation's run that made it.
            rows.append(
                (
                    "Automation",
                    f"{visible(origin.automation)} v{origin.version}, node "
                    f"{visible(origin.node or '-')}, execution #{origin.execution_id} "
                    f"({origin.execution_status.lower()})",
                )
            )
        rows += [
            ("Parameters", plain_lines(pretty_json(p.parameters))),
            (
                "Will run",
                plain_lines(preview)
                if preview
                else Text("(the subject gives no preview)", style="dim"),
            ),
            ("Reason", p.reason),
            ("Scheduled", full_time(p.scheduled_at) if p.scheduled_at else "run when ready"),
            (
                "Retries",
                f"{p.retry_count} of {p.max_retries} used"
                + (f"; next at {full_time(p.next_retry_at)}" if p.next_retry_at else ""),
            ),
        ]
        if p.last_error:
            rows.append(("Last error", Text(visible(p.last_error), style="red")))
        if p.workflow_id is not None:
            rows.append(
                (
                    "Workflow",
                    f"wf{p.workflow_id}, step {p.execution_order + 1}"
                    + (
                        f", {p.delay_seconds:g}s after the previous step" if p.delay_seconds else ""
                    ),
                )
            )
        if p.expires_at is not None:
            rows.append(("Expires", full_time(p.expires_at)))
        if p.claimed_by:
            rows.append(
                ("Runner", f"{p.claimed_by} (lease until {clock_time(p.lease_expires_at)})")
            )
        return rows

    async def _workflow_body(self, db: ActionDB, workflow_id: int) -> RenderableType:
        wf = await db.get_workflow(workflow_id)
        if wf is None:
            return Text(f"workflow wf{workflow_id} no longer exists", style="bold red")
        self.query_one("#detail-title", Static).update(
            Text.assemble(
                (f"Workflow wf{wf.id} {visible(wf.name)}", "bold"), f"  {wf.status.value}"
            )
        )
        steps = await db.list_workflow_actions(workflow_id)
        ticket = await db.get_ticket(wf.ticket_id) if wf.ticket_id else None
        events = await db.list_audit_events(workflow_id=workflow_id, limit=AUDIT_LIMIT)
        voided = await db.read(fingerprints.workflow_voided, workflow_id)
        fields = self._workflow_fields(wf)
        if voided and not wf.approved_at:
            fields.insert(2, ("Approval voided", Text(visible(voided), style="bold yellow")))
        return Group(
            _fields(fields),
            Text(""),
            _section(f"Steps ({len(steps)})"),
            self._steps(steps, db),
            Text(""),
            _section("Ticket"),
            _ticket(ticket),
            Text(""),
            _section(f"Audit events ({len(events)})"),
            _audit(events),
        )

    @staticmethod
    def _workflow_fields(wf: WorkflowProposal) -> list[tuple[str, RenderableType]]:
        if wf.rejected_at:
            approval = f"rejected by {wf.rejected_by}: {wf.rejection_reason}"
        elif wf.approved_at:
            approval = f"approved by {wf.approved_by} at {full_time(wf.approved_at)}"
        else:
            approval = "awaiting approval" if wf.requires_approval else "not required"
        return [
            ("Status", wf.status.value),
            ("Approval", approval),
            ("Created", f"{full_time(wf.created_at)} by {wf.proposed_by}"),
            ("Description", wf.description or "—"),
        ]

    @staticmethod
    def _steps(steps: list[ActionProposal], db: ActionDB) -> RenderableType:
        table = Table(box=None, padding=(0, 1), header_style="bold")
        for column in ("Step", "ID", "Action", "Parameters", "State", "Last error"):
            table.add_column(column, overflow="fold")
        now = db.clock.now()
        for s in steps:
            _add_row(
                table,
                str(s.execution_order + 1),
                f"#{s.id}",
                s.action_name,
                plain_lines(pretty_json(s.parameters)),
                step_state(s, now),
                s.last_error or "",
            )
        return table


def _section(title: str) -> Text:
    return Text(title, style="bold underline")
