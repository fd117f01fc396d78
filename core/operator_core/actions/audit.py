"""The append-only, hash-chained audit log.

The database refuses UPDATE and DELETE on it (triggers); each event carries the hash of the
one before, so an edit made around the triggers is found by ``verify``.
"""

from __future__ import annotations

from typing import Any

from operator_core.actions.safety import _Bound
from operator_core.db.actions import AuditEntry
from operator_core.model.types import AuditEvent


class ActionAuditor(_Bound):
    async def log_event(
        self,
        proposal_id: int | None,
        event_type: str,
        event_data: dict[str, Any] | None = None,
        actor: str = "system",
        workflow_id: int | None = None,
    ) -> None:
        db = await self._get_db()
        await db.append_audit_event(
            AuditEntry(event_type, event_data or {}, actor, proposal_id, workflow_id)
        )

    async def get_events(
        self, proposal_id: int | None = None, workflow_id: int | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        db = await self._get_db()
        return await db.list_audit_events(proposal_id, workflow_id, limit)

    async def verify(self) -> tuple[bool, int, str]:
        """(ok, events checked, message)."""
        return await (await self._get_db()).verify_audit_chain()
