"""The seeds' compatibility methods: the older API the seeds' scripts and tests call, each
one plain statement (the engine itself goes through the transitions of the other modules)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from operator_core.clock import to_db
from operator_core.db import audit
from operator_core.db.connection import Store
from operator_core.db.dialect import insert_id
from operator_core.db.encode import dumps
from operator_core.db.records import AuditEntry
from operator_core.db.rows import RECORDS_SQL, fetch_proposal, row_to_proposal, row_to_record
from operator_core.errors import InvalidTransitionError, WorkflowNotFoundError
from operator_core.model.states import ActionStatus, WorkflowStatus

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal, ActionRecord

# Set an action's status (by primary key), with the time the status implies.
SET_STATUS_ONLY_SQL = "UPDATE action_proposals SET status = :status WHERE id = :id"
SET_STATUS_SQL = {
    ActionStatus.VALIDATED: """
UPDATE action_proposals SET status = :status, validated_at = :now WHERE id = :id
""",
    ActionStatus.CANCELLED: """
UPDATE action_proposals SET status = :status, cancelled_at = :now, finished_at = :now,
    next_retry_at = NULL
WHERE id = :id
""",
    ActionStatus.COMPLETED: """
UPDATE action_proposals SET status = :status, finished_at = :now WHERE id = :id
""",
    ActionStatus.FAILED: """
UPDATE action_proposals SET status = :status, finished_at = :now WHERE id = :id
""",
}

# Validated scheduled actions that are due, approved (or needing no approval), not asked to
# stop, and whose dependency completed.
READY_SCHEDULED_SQL = """
SELECT * FROM action_proposals p
WHERE p.scheduled_at IS NOT NULL AND p.status = 'validated'
    AND p.cancel_requested = 0
    AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
    AND (
        (p.status = 'validated' AND (p.scheduled_at IS NULL OR p.scheduled_at <= :now))
        OR (p.status = 'failed' AND p.next_retry_at IS NOT NULL AND p.next_retry_at <= :now)
    )
    AND (p.depends_on_proposal_id IS NULL OR EXISTS (
        SELECT 1 FROM action_proposals d
        WHERE d.id = p.depends_on_proposal_id AND d.status = 'completed'))
ORDER BY p.scheduled_at LIMIT 1000
"""

# Every action a runner could start now: among the validated ready (idx_ready_validated) and
# the retry-waiting (idx_retry_due), those due, not asked to stop, whose dependency completed.
READY_SQL = """
SELECT * FROM action_proposals p
WHERE p.id IN (
        SELECT id FROM action_proposals
        WHERE status = 'validated' AND (requires_approval = 0 OR approved_at IS NOT NULL)
        UNION ALL
        SELECT id FROM action_proposals INDEXED BY idx_retry_due
        WHERE next_retry_at IS NOT NULL AND status = 'failed')
    AND p.cancel_requested = 0
    AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
    AND (
        (p.status = 'validated' AND (p.scheduled_at IS NULL OR p.scheduled_at <= :now))
        OR (p.status = 'failed' AND p.next_retry_at IS NOT NULL AND p.next_retry_at <= :now)
    )
    AND (p.depends_on_proposal_id IS NULL OR EXISTS (
        SELECT 1 FROM action_proposals d
        WHERE d.id = p.depends_on_proposal_id AND d.status = 'completed'))
ORDER BY p.id LIMIT :lim
"""


class Compat(Store):
    """The seeds' API, kept for their scripts and tests."""

    async def update_proposal_status(
        self,
        proposal_id: int,
        status: ActionStatus,
        expected: Sequence[ActionStatus] | None = None,
    ) -> None:
        """Set the status (seed API); ``expected`` guards the transition."""
        status = ActionStatus(status)
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            current = fetch_proposal(conn, proposal_id)
            if expected is not None and current.status not in expected:
                raise InvalidTransitionError(
                    f"action {proposal_id} is {current.status.value}, cannot become {status.value}"
                )
            conn.execute(
                SET_STATUS_SQL.get(status, SET_STATUS_ONLY_SQL),
                {"status": status.value, "now": now, "id": proposal_id},
            )

        await self._write(fn)

    async def list_ready_scheduled(self) -> list[ActionProposal]:
        """Validated scheduled actions that are due, approved (or needing no approval), and
        whose dependency completed."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            rows = conn.execute(READY_SCHEDULED_SQL, {"now": now}).fetchall()
            return [row_to_proposal(r) for r in rows]

        return await self._call(fn)

    async def list_ready(self, limit: int = 1000) -> list[ActionProposal]:
        """Every action a runner could start now."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            rows = conn.execute(READY_SQL, {"now": now, "lim": limit}).fetchall()
            return [row_to_proposal(r) for r in rows]

        return await self._call(fn)

    async def update_scheduled_at(self, proposal_id: int, scheduled_at: datetime | None) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE action_proposals SET scheduled_at = ? WHERE id = ?",
                (to_db(scheduled_at), proposal_id),
            )

        await self._write(fn)

    async def list_retry_eligible(self) -> list[ActionProposal]:
        """Failed actions with a retry scheduled and due, within their retry limit."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            rows = conn.execute(
                "SELECT * FROM action_proposals WHERE status = 'failed' AND "
                "retry_count <= max_retries AND next_retry_at IS NOT NULL AND "
                "next_retry_at <= ? ORDER BY next_retry_at LIMIT 1000",
                (now,),
            ).fetchall()
            return [row_to_proposal(r) for r in rows]

        return await self._call(fn)

    async def increment_retry_count(
        self, proposal_id: int, error_message: str | None = None
    ) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE action_proposals SET retry_count = retry_count + 1, last_error = ? "
                "WHERE id = ?",
                (error_message, proposal_id),
            )

        await self._write(fn)

    async def update_next_retry(self, proposal_id: int, next_retry_at: datetime | None) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE action_proposals SET next_retry_at = ? WHERE id = ?",
                (to_db(next_retry_at), proposal_id),
            )

        await self._write(fn)

    async def reset_for_retry(self, proposal_id: int) -> None:
        """failed -> validated for another attempt (guarded: only from failed)."""

        def fn(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE action_proposals SET status = 'validated', next_retry_at = NULL, "
                "finished_at = NULL WHERE id = ? AND status = 'failed'",
                (proposal_id,),
            )
            if cur.rowcount != 1:
                p = fetch_proposal(conn, proposal_id)
                raise InvalidTransitionError(
                    f"action {proposal_id} is {p.status.value}, not failed"
                )

        await self._write(fn)

    async def create_record(self, record: ActionRecord) -> ActionRecord:
        def fn(conn: sqlite3.Connection) -> int:
            return insert_id(
                conn,
                "INSERT INTO action_records (proposal_id, attempt, started_at, completed_at,"
                " success, error_message, result_data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.proposal_id,
                    record.attempt,
                    to_db(record.started_at),
                    to_db(record.completed_at),
                    None if record.success is None else int(record.success),
                    record.error_message,
                    None if record.result_data is None else dumps(record.result_data),
                ),
            )

        new_id = await self._write(fn)
        return record.model_copy(update={"id": new_id})

    async def update_record(
        self,
        record_id: int,
        success: bool,
        error_message: str | None = None,
        result_data: dict[str, Any] | None = None,
    ) -> None:
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE action_records SET completed_at = ?, success = ?, error_message = ?,"
                " result_data = ? WHERE id = ?",
                (
                    now,
                    int(success),
                    error_message,
                    None if result_data is None else dumps(result_data),
                    record_id,
                ),
            )

        await self._write(fn)

    async def list_records(self, proposal_id: int, limit: int = 100) -> list[ActionRecord]:
        def fn(conn: sqlite3.Connection) -> list[ActionRecord]:
            rows = conn.execute(RECORDS_SQL, (proposal_id, limit)).fetchall()
            return [row_to_record(r) for r in rows]

        return await self._call(fn)

    async def update_workflow_status(self, workflow_id: int, status: WorkflowStatus) -> None:
        status = WorkflowStatus(status)
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE workflows SET status = ?, finished_at = CASE WHEN ? IN "
                "('completed', 'failed', 'cancelled') THEN ? ELSE finished_at END WHERE id = ?",
                (status.value, status.value, now, workflow_id),
            )
            if cur.rowcount != 1:
                raise WorkflowNotFoundError(f"no workflow with id {workflow_id}")

        await self._write(fn)

    async def append_audit_event(self, entry: AuditEntry) -> None:
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            audit.append(conn, entry, now)

        await self._write(fn)
