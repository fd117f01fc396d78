"""The dashboard's reads as ``ActionDB`` offers them: each one ``Snapshot`` (snapshot.py)
on the connection's thread, in one read transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from operator_core.db import audit
from operator_core.db.connection import Store
from operator_core.db.snapshot import Counts, Snapshot
from operator_core.model.states import WorkflowStatus

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal, AuditEvent, WorkflowProposal

T = TypeVar("T")


class Reads(Store):
    """The dashboard's reads, as ``ActionDB`` offers them, each in one ``snapshot``."""

    async def list_workflows(
        self, status: WorkflowStatus | None = None, limit: int = 100, open_only: bool = False
    ) -> list[WorkflowProposal]:
        return await self.snapshot(lambda snap: snap.list_workflows(status, limit, open_only))

    async def get_safety_mode(self) -> tuple[str, datetime | None, str, str]:
        """(mode, changed_at, changed_by, reason)."""
        return await self.snapshot(lambda snap: snap.get_safety_mode())

    async def list_audit_events(
        self,
        proposal_id: int | None = None,
        workflow_id: int | None = None,
        limit: int = 100,
        after_id: int = 0,
    ) -> list[AuditEvent]:
        """Newest ``limit`` events (optionally of one action or workflow), oldest first."""
        return await self.snapshot(
            lambda snap: snap.list_audit_events(proposal_id, workflow_id, limit, after_id)
        )

    async def verify_audit_chain(self) -> tuple[bool, int, str]:
        """Recompute the hash chain. Returns (ok, events checked, message)."""
        return await self.read(audit.verify_chain)

    async def counts(self, by_status: bool = True) -> Counts:
        """Counts per dashboard pane, from indexes, and by status (see ``Snapshot.counts``)."""
        return await self.snapshot(lambda snap: snap.counts(by_status))

    async def list_pending_approvals(self, limit: int = 200) -> list[ActionProposal]:
        """Single actions awaiting approval, oldest first."""
        return await self.snapshot(lambda snap: snap.list_pending_approvals(limit))

    async def list_scheduled(self, limit: int = 200) -> list[ActionProposal]:
        """Validated actions with a future (or just-due) time, soonest first."""
        return await self.snapshot(lambda snap: snap.list_scheduled(limit))

    async def list_retry_backlog(self, limit: int = 200) -> list[ActionProposal]:
        """Actions waiting for a retry, soonest first."""
        return await self.snapshot(lambda snap: snap.list_retry_backlog(limit))

    async def list_workflow_steps(
        self, workflow_ids: Sequence[int]
    ) -> dict[int, list[ActionProposal]]:
        """Steps of several workflows in one query."""
        return await self.snapshot(lambda snap: snap.list_workflow_steps(workflow_ids))

    async def activity(self, minutes: int = 60) -> tuple[list[int], list[int]]:
        """Executions and failures per minute over the last ``minutes`` (oldest first)."""
        return await self.snapshot(lambda snap: snap.activity(minutes))

    async def snapshot(self, fn: Callable[[Snapshot], T], *, views: bool = False) -> T:
        """``fn(snapshot)`` on the database's thread, inside one read transaction: the reads
        it makes see one consistent state of the database, and cost one trip to the thread.
        The event loop stays free meanwhile (a dashboard refresh does not hold up keys).
        With ``views``, its actions, workflows and audit events are read as the plain
        objects of ``operator_core.model.views`` instead of models (see ``Snapshot``)."""

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN")
            try:
                return fn(Snapshot(conn, self.clock, views=views))
            finally:
                conn.execute("COMMIT")

        return await self._call(run)
