"""What the dashboard reads, and only through ActionDB's bounded read methods (no SQL here).

One ``load`` gathers everything the panes and the header show; the audit tail is read
incrementally (only events newer than the last one seen). Actions, workflows and events are
read as views (``operator_core.model.views``: the models' attributes, without pydantic),
so the first frame is drawn before pydantic is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from operator_core.db import fingerprints, heartbeats, running
from operator_core.db.actions import ActionDB, Counts, Snapshot
from operator_core.db.heartbeats import RunnerBeat
from operator_core.db.running import InHand
from operator_core.model.states import ActionStatus, WorkflowStatus
from operator_core.model.views import AuditEventView, ProposalView, WorkflowView
from operator_core.safe_text import visible

if TYPE_CHECKING:
    from operator_core.anchor.runtime import AnchorStatus
    from operator_core.model.types import ActionProposal, WorkflowProposal

ROW_LIMIT = 200
"""Rows per pane: the database may hold 100,000 actions; a pane never reads more than this."""
WORKFLOW_LIMIT = 50
EVENT_LIMIT = 100


@dataclass(frozen=True)
class Target:
    """What a key acts on: one action or a whole workflow. The fields after ``label`` are
    what the row said when it was read (not part of its identity)."""

    kind: Literal["action", "workflow"]
    id: int
    label: str
    actions: tuple[str, ...] = field(default=(), compare=False)
    """The action's name; a workflow's steps' names (what approving it approves)."""
    step_of: int | None = field(default=None, compare=False)
    """A workflow step's workflow id: steps are approved and rejected as their workflow."""
    can: frozenset[str] | None = field(default=None, compare=False)
    """The decisions that apply to it as read (None: not known, all offered)."""

    @property
    def key(self) -> str:
        return f"{'p' if self.kind == 'action' else 'w'}{self.id}"

    @property
    def name(self) -> str:
        """The id as every surface writes it: ``#5`` for an action, ``wf2`` for a workflow."""
        return f"#{self.id}" if self.kind == "action" else f"wf{self.id}"


def action_target(p: ProposalView | ActionProposal) -> Target:
    assert p.id is not None
    waiting = (
        p.status in (ActionStatus.PROPOSED, ActionStatus.VALIDATED)
        and p.approved_at is None
        and p.rejected_at is None
        and (p.requires_approval or p.workflow_id is not None)
    )
    finished = p.status in (ActionStatus.COMPLETED, ActionStatus.CANCELLED) or (
        p.status == ActionStatus.FAILED and p.next_retry_at is None
    )
    can = {"approve", "reject"} if waiting else set()
    if not finished:
        can.add("cancel")
    return Target(
        "action",
        p.id,
        f"action #{p.id} {visible(p.action_name)}",
        actions=(p.action_name,),
        step_of=p.workflow_id,
        can=frozenset(can),
    )


def workflow_target(
    wf: WorkflowView | WorkflowProposal, steps: list[ProposalView] | None = None
) -> Target:
    """``steps``: the workflow's steps, if read (their risks decide what approve asks)."""
    assert wf.id is not None
    can = {"approve", "reject"} if awaits_approval(wf) else set()
    if wf.status in (WorkflowStatus.PENDING, WorkflowStatus.IN_PROGRESS):
        can.add("cancel")
    # A label is shown in dialogs and notifications: a name's control characters escaped.
    return Target(
        "workflow",
        wf.id,
        f"workflow wf{wf.id} {visible(wf.name)}",
        actions=tuple(s.action_name for s in steps) if steps is not None else (),
        can=frozenset(can),
    )


@dataclass(frozen=True)
class SafetyState:
    mode: str
    changed_at: datetime | None
    changed_by: str
    reason: str

    @property
    def observe(self) -> bool:
        return self.mode != "execute"


@dataclass
class DashboardData:
    loaded_at: datetime
    safety: SafetyState
    counts: Counts
    approvals: list[ProposalView]
    workflows: list[WorkflowView]
    steps: dict[int, list[ProposalView]]
    scheduled: list[ProposalView]
    retries: list[ProposalView]
    executions: list[int] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    events: list[AuditEventView] = field(default_factory=list)
    """Audit events after the ``after_event_id`` given to ``load`` (oldest first)."""
    anchor: AnchorStatus | None = None
    """The audit checkpoints (None: this process publishes none)."""
    runners: list[RunnerBeat] = field(default_factory=list)
    """The runners up (a heartbeat within ``heartbeats.ALIVE_WITHIN``)."""
    running: list[InHand] = field(default_factory=list)
    queued: list[InHand] = field(default_factory=list)
    """Due work no runner has claimed yet."""
    voided: dict[tuple[str, int], str] = field(default_factory=dict)
    """Why an action or workflow awaiting approval again had its approval voided."""
    rows_read: int = ROW_LIMIT
    """How many of the scheduled actions and of those waiting for a retry were read at
    most: ``ROW_LIMIT``, or the rows the first frame shows when it left some out (see
    ``read``)."""

    @property
    def partial(self) -> bool:
        """Only the first frame's rows of the long lists were read: the rest come next."""
        return self.rows_read < ROW_LIMIT

    @property
    def workflows_awaiting(self) -> list[WorkflowView]:
        """Open workflows that still need their one approval, oldest first."""
        return sorted(
            (wf for wf in self.workflows if awaits_approval(wf)), key=lambda wf: wf.id or 0
        )


def awaits_approval(wf: WorkflowView | WorkflowProposal) -> bool:
    return (
        wf.status == WorkflowStatus.PENDING
        and wf.requires_approval
        and wf.approved_at is None
        and wf.rejected_at is None
    )


async def load(
    db: ActionDB, after_event_id: int | None = None, rows: int = ROW_LIMIT
) -> DashboardData:
    """Everything the panes and the header show, each list bounded, and (given
    ``after_event_id``) the audit events after it: one consistent snapshot, read on the
    database's thread in one go. ``rows``: see ``read``."""
    data = await db.snapshot(lambda snap: read(snap, after_event_id, rows), views=True)
    return replace(data, anchor=anchor_of(db))


def anchor_of(db: ActionDB) -> AnchorStatus | None:
    if db.audit_publisher is None:
        return None
    from operator_core.anchor.runtime import anchor_status  # loaded with the publisher

    return anchor_status(db.audit_publisher)


def read(snap: Snapshot, after_event_id: int | None = None, rows: int = ROW_LIMIT) -> DashboardData:
    """``load``'s reads, on the database's thread. ``rows``: how many of the scheduled
    actions and of those waiting for a retry to read (each list in the order its pane shows
    it, and counted in full): the first frame reads the rows it shows and the rest are read
    right after it (reading and making views of 200 rows a list was most of the first read).
    The other lists the first frame needs whole: Approvals sorts the first ``ROW_LIMIT``
    actions awaiting approval by when they were proposed, with the open workflows (and their
    steps) awaiting it; the header counts the work due."""
    rows = min(rows, ROW_LIMIT)
    scheduled = snap.list_scheduled(limit=rows)
    retries = snap.list_retry_backlog(limit=rows)
    if len(scheduled) < rows and len(retries) < rows:
        rows = ROW_LIMIT  # nothing left out: these are the whole lists
    workflows = snap.list_workflows(open_only=True, limit=WORKFLOW_LIMIT)
    workflows.sort(key=lambda wf: wf.id or 0)
    executions, failures = snap.activity(60)
    now = snap.clock.now()
    return DashboardData(
        loaded_at=now,
        safety=SafetyState(*snap.get_safety_mode()),
        counts=snap.counts(by_status=False),
        approvals=snap.list_pending_approvals(limit=ROW_LIMIT),
        workflows=workflows,
        steps=snap.list_workflow_steps([wf.id for wf in workflows if wf.id is not None]),
        scheduled=scheduled,
        retries=retries,
        executions=executions,
        failures=failures,
        runners=snap.query(heartbeats.live_runners, now),
        running=snap.query(running.running, ROW_LIMIT, True),
        queued=snap.query(running.queued, now, ROW_LIMIT, True),
        voided=snap.query(fingerprints.voided_awaiting, ROW_LIMIT),
        events=(
            []
            if after_event_id is None
            else snap.list_audit_events(limit=EVENT_LIMIT, after_id=after_event_id)
        ),
        rows_read=rows,
    )


async def next_minute(db: ActionDB, data: DashboardData) -> DashboardData:
    """``data`` a minute later, when the database has not changed since it was loaded: the same
    rows, re-read only what moves with the clock: the activity per minute (its window has
    moved), the runners up (a silent one is gone) and the work come due."""
    return replace(
        await db.snapshot(lambda snap: _with_time(snap, data), views=True), anchor=anchor_of(db)
    )


def _with_time(snap: Snapshot, data: DashboardData) -> DashboardData:
    executions, failures = snap.activity(60)
    now = snap.clock.now()
    return replace(
        data,
        loaded_at=now,
        executions=executions,
        failures=failures,
        runners=snap.query(heartbeats.live_runners, now),
        queued=snap.query(running.queued, now, ROW_LIMIT, True),
    )
