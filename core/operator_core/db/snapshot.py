"""The dashboard's reads and ``operator status``: a ``Snapshot`` is one read transaction
(``Reads``, in ``reads.py``, runs one on ActionDB's connection; the CLI's fast path on its
own sqlite3 connection, so this module imports no aiosqlite).

Every count and list reads through the index that holds exactly its set, so a refresh costs
the same with 100 or 100,000 actions of history (the partial index's condition is written
out in the query: SQLite uses a partial index only for a query that states it).
"""

from __future__ import annotations

from operator_core.clock import Clock, from_db, timedelta, to_db
from operator_core.db.lookups import read_mode
from operator_core.db.rows import row_to_audit, row_to_proposal, row_to_workflow
from operator_core.model.states import WorkflowStatus

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence
    from datetime import datetime
    from typing import TypeVar

    from operator_core.model.types import ActionProposal, AuditEvent, WorkflowProposal

    T = TypeVar("T")

# Every action but the validated ones, by status (idx_action_proposals_state).
BY_STATUS_SQL = """
SELECT status, COUNT(*) FROM action_proposals WHERE status <> 'validated' GROUP BY status
"""

# Validated actions: ready to run once due (idx_ready_validated) or waiting for their
# approval (idx_awaiting_approval); each is in exactly one.
VALIDATED_COUNT_SQL = """
SELECT COUNT(*) FROM (
    SELECT id FROM action_proposals
    WHERE status = 'validated' AND (requires_approval = 0 OR approved_at IS NOT NULL)
    UNION ALL
    SELECT id FROM action_proposals
    WHERE status IN ('proposed', 'validated') AND requires_approval <> 0
        AND approved_at IS NULL AND status = 'validated') AS validated
"""

# Executing actions (idx_action_proposals_state).
EXECUTING_COUNT_SQL = """
SELECT COUNT(*) FROM action_proposals WHERE status = 'executing' AND status <> 'validated'
"""

# Single actions awaiting approval (idx_awaiting_approval), counted, then listed oldest first.
AWAITING_COUNT_SQL = """
SELECT COUNT(*) FROM action_proposals
WHERE status IN ('proposed', 'validated') AND requires_approval <> 0 AND approved_at IS NULL
    AND workflow_id IS NULL
"""
AWAITING_SQL = """
SELECT * FROM action_proposals
WHERE status IN ('proposed', 'validated') AND requires_approval <> 0 AND approved_at IS NULL
    AND workflow_id IS NULL
ORDER BY id LIMIT ?
"""

# Workflows awaiting approval, and open ones (idx_workflows_status).
WORKFLOWS_AWAITING_COUNT_SQL = """
SELECT COUNT(*) FROM workflows
WHERE status = 'pending' AND requires_approval = 1 AND approved_at IS NULL
"""
WORKFLOWS_OPEN_COUNT_SQL = """
SELECT COUNT(*) FROM workflows WHERE status IN ('pending', 'in_progress')
"""

# Validated actions with a time, due or not yet (idx_validated_scheduled), counted, then
# listed soonest first. (The planner, without statistics, would rather walk every validated
# action of the history through the status index, then sort them.)
SCHEDULED_COUNT_SQL = """
SELECT COUNT(*) FROM action_proposals INDEXED BY idx_validated_scheduled
WHERE scheduled_at IS NOT NULL AND status = 'validated'
"""
SCHEDULED_SQL = """
SELECT * FROM action_proposals INDEXED BY idx_validated_scheduled
WHERE scheduled_at IS NOT NULL AND status = 'validated'
ORDER BY scheduled_at LIMIT ?
"""

# Actions waiting for a retry (idx_retry_due), counted, then listed soonest first.
RETRY_COUNT_SQL = """
SELECT COUNT(*) FROM action_proposals INDEXED BY idx_retry_due
WHERE next_retry_at IS NOT NULL AND status = 'failed'
"""
RETRY_SQL = """
SELECT * FROM action_proposals INDEXED BY idx_retry_due
WHERE next_retry_at IS NOT NULL AND status = 'failed'
ORDER BY next_retry_at LIMIT ?
"""

# The steps of several workflows ({marks}: one ? per workflow; idx_action_proposals_workflow).
WORKFLOW_STEPS_SQL = """
SELECT * FROM action_proposals WHERE workflow_id IN ({marks})
ORDER BY workflow_id, execution_order
"""

# Attempts finished since a time (idx_action_records_completed).
ACTIVITY_SQL = """
SELECT completed_at, success FROM action_records
WHERE completed_at >= ? AND completed_at IS NOT NULL
"""


class Counts:
    """Counts for the header and ``operator status`` (a plain class: a named tuple would
    import typing, which a reading command's start does without)."""

    def __init__(
        self,
        by_status: dict[str, int],
        awaiting_approval: int,
        workflows_awaiting_approval: int,
        workflows_open: int,
        scheduled: int,
        retry_waiting: int,
        executing: int,
    ) -> None:
        self.by_status = by_status
        self.awaiting_approval = awaiting_approval
        self.workflows_awaiting_approval = workflows_awaiting_approval
        self.workflows_open = workflows_open
        self.scheduled = scheduled
        self.retry_waiting = retry_waiting
        self.executing = executing

    def __eq__(self, other: object) -> bool:
        return type(other) is Counts and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Counts({vars(self)})"


class Snapshot:
    """Reads of the dashboard and ``operator status``, synchronous, on one connection inside
    ``ActionDB.snapshot``'s read transaction (ActionDB's own read methods go through it).

    With ``views``, actions, workflows and audit events come as ``ProposalView``,
    ``WorkflowView`` and ``AuditEventView`` (the models' attributes, no pydantic): what the
    dashboard reads, for display only."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock, *, views: bool = False) -> None:
        self._conn = conn
        self.clock = clock
        self.views = views

    def query(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(conn, *args)`` inside this snapshot: the read modules beside this one
        (``running``, ``heartbeats``, ``history``) take the connection itself."""
        return fn(self._conn, *args)

    def get_safety_mode(self) -> tuple[str, datetime | None, str, str]:
        """(mode, changed_at, changed_by, reason). A kill file the database has not caught
        up with yet is OBSERVE already."""
        return read_mode(self._conn)

    def counts(self, by_status: bool = True) -> Counts:
        """Counts per dashboard pane, from indexes, and by status. Without ``by_status`` (the
        dashboard's header shows only what is open) the count of every action by status is
        left out (empty): it walks the status index (every action but the validated ones,
        counted through their own two indexes), most of the read on a long history.
        """
        conn = self._conn
        if by_status:
            statuses = {r[0]: r[1] for r in conn.execute(BY_STATUS_SQL).fetchall()}
            # Validated actions are either ready or awaiting approval (one index each).
            validated = conn.execute(VALIDATED_COUNT_SQL).fetchone()[0]
            if validated:
                statuses = dict(sorted({**statuses, "validated": validated}.items()))
            executing = statuses.get("executing", 0)
        else:
            statuses = {}
            executing = conn.execute(EXECUTING_COUNT_SQL).fetchone()[0]
        pending = conn.execute(AWAITING_COUNT_SQL).fetchone()[0]
        wf_pending = conn.execute(WORKFLOWS_AWAITING_COUNT_SQL).fetchone()[0]
        wf_open = conn.execute(WORKFLOWS_OPEN_COUNT_SQL).fetchone()[0]
        scheduled = conn.execute(SCHEDULED_COUNT_SQL).fetchone()[0]
        retry = conn.execute(RETRY_COUNT_SQL).fetchone()[0]
        return Counts(
            by_status=statuses,
            awaiting_approval=pending,
            workflows_awaiting_approval=wf_pending,
            workflows_open=wf_open,
            scheduled=scheduled,
            retry_waiting=retry,
            executing=executing,
        )

    def list_workflows(
        self, status: WorkflowStatus | None = None, limit: int = 100, open_only: bool = False
    ) -> list[WorkflowProposal]:
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(WorkflowStatus(status).value)
        if open_only:
            clauses.append("status IN ('pending', 'in_progress')")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn.execute(
            f"SELECT * FROM workflows {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        ).fetchall()
        return [row_to_workflow(r, self.views) for r in rows]

    def _proposals(self, sql: str, limit: int) -> list[ActionProposal]:
        rows = self._conn.execute(sql, (limit,)).fetchall()
        return [row_to_proposal(r, self.views) for r in rows]

    def list_pending_approvals(self, limit: int = 200) -> list[ActionProposal]:
        """Single actions awaiting approval, oldest first."""
        return self._proposals(AWAITING_SQL, limit)

    def list_scheduled(self, limit: int = 200) -> list[ActionProposal]:
        """Validated actions with a future (or just-due) time, soonest first."""
        return self._proposals(SCHEDULED_SQL, limit)

    def list_retry_backlog(self, limit: int = 200) -> list[ActionProposal]:
        """Actions waiting for a retry, soonest first."""
        return self._proposals(RETRY_SQL, limit)

    def list_workflow_steps(self, workflow_ids: Sequence[int]) -> dict[int, list[ActionProposal]]:
        """Steps of several workflows in one query."""
        if not workflow_ids:
            return {}
        marks = ",".join("?" * len(workflow_ids))
        out: dict[int, list[ActionProposal]] = {w: [] for w in workflow_ids}
        for r in self._conn.execute(
            WORKFLOW_STEPS_SQL.format(marks=marks), tuple(workflow_ids)
        ).fetchall():
            p = row_to_proposal(r, self.views)
            assert p.workflow_id is not None
            out[p.workflow_id].append(p)
        return out

    def activity(self, minutes: int = 60) -> tuple[list[int], list[int]]:
        """Executions and failures per minute over the last ``minutes`` (oldest first)."""
        start = self.clock.now() - timedelta(minutes=minutes)
        done = [0] * minutes
        failed = [0] * minutes
        for completed_at, success in self._conn.execute(ACTIVITY_SQL, (to_db(start),)):
            ts = from_db(completed_at)
            assert ts is not None
            idx = int((ts - start).total_seconds() // 60)
            if 0 <= idx < minutes:
                done[idx] += 1
                if not success:
                    failed[idx] += 1
        return done, failed

    def list_audit_events(
        self,
        proposal_id: int | None = None,
        workflow_id: int | None = None,
        limit: int = 100,
        after_id: int = 0,
    ) -> list[AuditEvent]:
        """Newest ``limit`` events (optionally of one action or workflow), oldest first."""
        clauses, params = ["id > ?"], [after_id]
        if proposal_id is not None:
            clauses.append("proposal_id = ?")
            params.append(proposal_id)
        if workflow_id is not None:
            clauses.append("workflow_id = ?")
            params.append(workflow_id)
        rows = self._conn.execute(
            f"SELECT * FROM action_audit_log WHERE {' AND '.join(clauses)} "
            "ORDER BY id DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [row_to_audit(r, self.views) for r in reversed(rows)]
