"""Workflows: steps created together, each depending on the one before; approved, rejected
and cancelled as one."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from operator_core.anchor.chain import parameters_sha256
from operator_core.clock import to_db
from operator_core.db import audit as audit_log
from operator_core.db import fingerprints as fingerprint_db
from operator_core.db import safety
from operator_core.db.agent_budgets import check_agent, write_checked
from operator_core.db.cancel import cancel_workflow_tx
from operator_core.db.connection import Store
from operator_core.db.dialect import insert_id
from operator_core.db.lookups import workflow_actions
from operator_core.db.policy import check_four_eyes, held_entries, lapsed, workflow_expiry
from operator_core.db.records import AuditEntry
from operator_core.db.rows import (
    WORKFLOW_SQL,
    fetch_workflow,
    insert_proposal,
    row_to_workflow,
)
from operator_core.errors import ApprovalError, InvalidTransitionError
from operator_core.identity import actor_text, current_identity
from operator_core.model.states import WorkflowStatus

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal, WorkflowProposal

# A new workflow, pending.
INSERT_WORKFLOW_SQL = """
INSERT INTO workflows (name, description, ticket_id, status, created_at, updated_at,
    requires_approval, proposed_by, proposed_identity)
VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)
"""

# Approve a workflow (by primary key), then its pending steps.
APPROVE_WORKFLOW_SQL = """
UPDATE workflows SET approved_at = ?, approved_by = ?, approved_identity = ? WHERE id = ?
"""
APPROVE_STEPS_SQL = """
UPDATE action_proposals SET approved_at = ?, approved_by = ?, approved_identity = ?
WHERE workflow_id = ? AND status IN ('proposed', 'validated') AND approved_at IS NULL
"""

# A workflow's steps and their parameters, as approved (walks the workflow_id index).
STEP_PARAMETERS_SQL = (
    "SELECT id, parameters FROM action_proposals WHERE workflow_id = ? ORDER BY id"
)

# Reject a workflow (by primary key), then its pending steps.
REJECT_WORKFLOW_SQL = """
UPDATE workflows SET rejected_at = ?, rejected_by = ?, rejection_reason = ?,
    rejected_identity = ?
WHERE id = ?
"""
REJECT_STEPS_SQL = """
UPDATE action_proposals SET rejected_at = ?, rejected_by = ?, rejection_reason = ?,
    rejected_identity = ?
WHERE workflow_id = ? AND status IN ('proposed', 'validated')
"""


def describe_workflow(wf: WorkflowProposal) -> str:
    if wf.rejected_at:
        return "rejected"
    if wf.approved_at and wf.status == WorkflowStatus.PENDING:
        return "already approved"
    return wf.status.value


class WorkflowOps(Store):
    """Workflows, as ``ActionDB`` offers them."""

    async def create_workflow(
        self,
        name: str,
        description: str,
        actions: list[ActionProposal],
        ticket_id: int | None = None,
        *,
        requires_approval: bool | None = None,
        proposed_by: str = "agent",
        audit: Iterable[AuditEntry] = (),
        require_execute: bool = False,
        identity: str | None = None,
    ) -> int:
        """Create a workflow and all its steps in one transaction; each step depends on the
        one before it. Returns the workflow id."""
        if not actions:
            raise ValueError("a workflow needs at least one action")
        needs = (
            any(a.requires_approval for a in actions)
            if requires_approval is None
            else requires_approval
        )
        entries = list(audit)
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> int:
            nonlocal needs, entries
            check_agent(conn, proposed_by, who, [a.action_name for a in actions], now)
            if require_execute and safety.require_execute(conn) and not needs:
                needs, entries = True, held_entries(entries)  # the database's approval mode
            workflow_id = insert_id(
                conn,
                INSERT_WORKFLOW_SQL,
                (name, description, ticket_id, now, now, int(needs), proposed_by, who),
            )
            events = [
                AuditEntry(
                    e.event_type,
                    {**e.event_data, "workflow_id": workflow_id},
                    e.actor,
                    e.proposal_id,
                    workflow_id,
                )
                for e in entries
            ]
            previous: int | None = None
            for i, action in enumerate(actions):
                step = action.model_copy(
                    update={
                        "workflow_id": workflow_id,
                        "execution_order": i,
                        "depends_on_proposal_id": previous,
                        "ticket_id": action.ticket_id if action.ticket_id else ticket_id,
                        "requires_approval": needs,
                    }
                )
                previous = insert_proposal(conn, step, who)
                events.append(
                    AuditEntry(
                        "proposed",
                        {
                            "action": step.action_name,
                            "parameters": step.parameters,
                            "reason": step.reason,
                            "step": i + 1,
                            "validated": True,
                            "requires_approval": needs,
                        },
                        actor_text(proposed_by, who),
                        previous,
                        workflow_id,
                    )
                )
            audit_log.append_all(conn, events, now)
            return workflow_id

        return await write_checked(self, actor_text(proposed_by, who), fn)

    async def get_workflow(self, workflow_id: int) -> WorkflowProposal | None:
        def fn(conn: sqlite3.Connection) -> WorkflowProposal | None:
            row = conn.execute(WORKFLOW_SQL, (workflow_id,)).fetchone()
            return row_to_workflow(row) if row else None

        return await self._call(fn)

    async def list_workflow_actions(self, workflow_id: int) -> list[ActionProposal]:
        return await self._call(workflow_actions, workflow_id)

    async def approve_workflow(
        self,
        workflow_id: int,
        approved_by: str = "user",
        *,
        identity: str | None = None,
        fingerprints: Mapping[int, tuple[str, str]] | None = None,
    ) -> WorkflowProposal:
        """Approve a workflow and with it every one of its steps (approve once, run all);
        as ``approve_proposal`` for the four-eyes rule and expiry. ``fingerprints`` binds
        each step (by id) to what it will run."""
        now_dt = self.clock.now()
        now = to_db(now_dt)
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> WorkflowProposal | None:
            wf = fetch_workflow(conn, workflow_id)
            if wf.status != WorkflowStatus.PENDING or wf.approved_at or wf.rejected_at:
                raise InvalidTransitionError(
                    f"workflow {workflow_id} is {describe_workflow(wf)}; only a pending "
                    "workflow awaiting approval can be approved"
                )
            if lapsed(workflow_expiry(conn, workflow_id), now_dt):
                cancel_workflow_tx(conn, workflow_id, "system", "expired", now or "")
                return None
            check_four_eyes(conn, True, workflow_id, who, f"workflow {workflow_id}")
            conn.execute(APPROVE_WORKFLOW_SQL, (now, approved_by, who, workflow_id))
            conn.execute(APPROVE_STEPS_SQL, (now, approved_by, who, workflow_id))
            fingerprint_db.bind_steps(conn, workflow_id, fingerprints or {})
            # Each step's parameters as approved, so an edit of a step's row shows.
            steps = {
                str(row[0]): parameters_sha256(json.loads(row[1]))
                for row in conn.execute(STEP_PARAMETERS_SQL, (workflow_id,))
            }
            audit_log.append(
                conn,
                AuditEntry(
                    "workflow_approved",
                    {
                        "workflow_id": workflow_id,
                        "parameters_sha256": steps,
                        "fingerprint_sha256": {
                            str(pid): sha for pid, (sha, _) in (fingerprints or {}).items()
                        },
                    },
                    actor_text(approved_by, who),
                    None,
                    workflow_id,
                ),
                now,
            )
            return fetch_workflow(conn, workflow_id)

        approved = await self._write(fn)
        if approved is None:
            raise ApprovalError(
                f"workflow {workflow_id} expired before it was approved; it "
                "is cancelled (propose it again if it is still needed)"
            )
        return approved

    async def reject_workflow(
        self,
        workflow_id: int,
        rejected_by: str = "user",
        reason: str = "",
        *,
        identity: str | None = None,
    ) -> WorkflowProposal:
        """Reject a pending workflow: it and all its steps are cancelled."""
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> WorkflowProposal:
            wf = fetch_workflow(conn, workflow_id)
            if wf.status != WorkflowStatus.PENDING or wf.approved_at or wf.rejected_at:
                raise InvalidTransitionError(
                    f"workflow {workflow_id} is {describe_workflow(wf)}; only a pending "
                    "workflow awaiting approval can be rejected"
                )
            conn.execute(REJECT_WORKFLOW_SQL, (now, rejected_by, reason, who, workflow_id))
            conn.execute(REJECT_STEPS_SQL, (now, rejected_by, reason, who, workflow_id))
            audit_log.append(
                conn,
                AuditEntry(
                    "workflow_rejected",
                    {"workflow_id": workflow_id, "reason": reason},
                    actor_text(rejected_by, who),
                    None,
                    workflow_id,
                ),
                now,
            )
            cancel_workflow_tx(conn, workflow_id, rejected_by, "rejected", now, identity=who)
            return fetch_workflow(conn, workflow_id)

        return await self._write(fn)

    async def cancel_workflow(
        self,
        workflow_id: int,
        cancelled_by: str,
        reason: str = "cancelled",
        *,
        identity: str | None = None,
    ) -> WorkflowProposal:
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> WorkflowProposal:
            cancel_workflow_tx(conn, workflow_id, cancelled_by, reason, now, identity=who)
            return fetch_workflow(conn, workflow_id)

        return await self._write(fn)
