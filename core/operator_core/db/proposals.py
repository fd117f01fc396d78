"""Tickets and single actions: propose, validate, approve, reject, cancel and expire.

Each transition is one transaction guarded by the state it expects; one that finds the row
elsewhere raises InvalidTransitionError.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from operator_core.anchor.chain import parameters_sha256
from operator_core.clock import to_db
from operator_core.db import audit as audit_log
from operator_core.db import fingerprints, safety
from operator_core.db.agent_budgets import check_agent, write_checked
from operator_core.db.cancel import (
    CANCEL_EXPIRED_SQL,
    CANCEL_ONE_SQL,
    STOP_ONE_SQL,
    cancel,
    cancel_workflow_tx,
)
from operator_core.db.connection import Store
from operator_core.db.dialect import insert_id
from operator_core.db.lookups import proposals_query
from operator_core.db.policy import check_four_eyes, expire_at_approval, lapsed, with_approval
from operator_core.db.records import AuditEntry
from operator_core.db.rows import (
    PROPOSAL_SQL,
    fetch_proposal,
    insert_proposal,
    insert_proposals,
    row_to_proposal,
    row_to_ticket,
    with_id,
)
from operator_core.db.safety import CANCEL_ALL_PENDING_SQL
from operator_core.errors import ApprovalError, InvalidTransitionError
from operator_core.identity import actor_text, current_identity
from operator_core.model.states import ActionStatus

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal, Ticket

# A new ticket.
INSERT_TICKET_SQL = """
INSERT INTO tickets (title, summary, severity, status, created_at) VALUES (?, ?, ?, ?, ?)
"""

# One ticket by primary key.
TICKET_SQL = "SELECT * FROM tickets WHERE id = ?"

# One proposer's proposals, newest first: walks the primary key backwards, stops at LIMIT.
PROPOSED_BY_SQL = "SELECT * FROM action_proposals WHERE proposed_by = ? ORDER BY id DESC LIMIT ?"

# proposed -> validated (by primary key).
VALIDATE_SQL = """
UPDATE action_proposals SET status = 'validated', validated_at = ?
WHERE id = ? AND status = 'proposed'
"""

# Approve a pending action not approved yet (by primary key).
APPROVE_SQL = """
UPDATE action_proposals SET approved_at = ?, approved_by = ?, approved_identity = ?
WHERE id = ? AND status IN ('proposed', 'validated') AND approved_at IS NULL
"""

# Reject a pending action not approved yet: it is cancelled (by primary key).
REJECT_SQL = """
UPDATE action_proposals SET rejected_at = ?, rejected_by = ?, rejection_reason = ?,
    status = 'cancelled', cancelled_at = ?, cancelled_by = ?, cancel_reason = 'rejected',
    finished_at = ?, rejected_identity = ?, cancelled_identity = ?
WHERE id = ? AND status IN ('proposed', 'validated') AND approved_at IS NULL
"""

# Whether an unapproved proposal has expired (idx_action_proposals_expiry).
EXPIRED_PROBE_SQL = """
SELECT 1 FROM action_proposals INDEXED BY idx_action_proposals_expiry
WHERE expires_at IS NOT NULL AND approved_at IS NULL AND expires_at <= :now
    AND status IN ('proposed', 'validated')
LIMIT 1
"""


def has_expired(conn: sqlite3.Connection, now: str) -> bool:
    return conn.execute(EXPIRED_PROBE_SQL, {"now": now}).fetchone() is not None


def describe_status(p: ActionProposal) -> str:
    if p.status == ActionStatus.FAILED and p.next_retry_at is None:
        return "failed for good"
    if p.status == ActionStatus.CANCELLED and p.cancel_reason:
        return f"cancelled ({p.cancel_reason})"
    return p.status.value


def check_approvable(
    status: ActionStatus, approved_at: datetime | None, rejected_at: datetime | None, what: str
) -> None:
    if rejected_at is not None:
        raise InvalidTransitionError(f"{what} was already rejected")
    if approved_at is not None:
        raise InvalidTransitionError(f"{what} is already approved")
    if status not in (ActionStatus.PROPOSED, ActionStatus.VALIDATED):
        raise InvalidTransitionError(
            f"{what} is {status.value}; only a pending action can be approved or rejected"
        )


def store_proposal(
    conn: sqlite3.Connection,
    proposal: ActionProposal,
    entries: list[AuditEntry],
    identity: str,
    now: str,
    require_execute: bool,
) -> ActionProposal:
    """Insert a proposal and its audit events in the caller's transaction; with
    ``require_execute``, refused while the mode is OBSERVE and held for approval while the
    database's approval mode is on."""
    check_agent(conn, proposal.proposed_by, identity, [proposal.action_name], now)
    if require_execute and safety.require_execute(conn):
        proposal, entries = with_approval(proposal, entries)
    new_id = insert_proposal(conn, proposal, identity)
    audit_log.append_all(conn, entries, now, [new_id] * len(entries))
    return with_id(proposal, new_id)


class ProposalOps(Store):
    """Tickets and single actions, as ``ActionDB`` offers them."""

    # How a proposal is stored inside its transaction (PostgreSQL's: pg/append.py).
    _store_proposal = staticmethod(store_proposal)

    async def create_ticket(self, ticket: Ticket, actor: str = "agent") -> Ticket:
        now = self._now()

        def fn(conn: sqlite3.Connection) -> int:
            ticket_id = insert_id(
                conn,
                INSERT_TICKET_SQL,
                (
                    ticket.title,
                    ticket.summary,
                    ticket.severity,
                    ticket.status,
                    to_db(ticket.created_at),
                ),
            )
            audit_log.append(
                conn,
                AuditEntry("ticket_opened", {"ticket_id": ticket_id, "title": ticket.title}, actor),
                now,
            )
            return ticket_id

        ticket_id = await self._write(fn)
        return ticket.model_copy(update={"id": ticket_id})

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        def fn(conn: sqlite3.Connection) -> Ticket | None:
            row = conn.execute(TICKET_SQL, (ticket_id,)).fetchone()
            return row_to_ticket(row) if row else None

        return await self._call(fn)

    async def create_proposal(
        self,
        proposal: ActionProposal,
        audit: Iterable[AuditEntry] = (),
        *,
        require_execute: bool = False,
        identity: str | None = None,
    ) -> ActionProposal:
        """Insert a proposal (and its audit events) and return it with its id.
        ``require_execute`` refuses it, in the same transaction, while the mode is OBSERVE."""
        entries = list(audit)
        now = self._now()
        who = identity or current_identity().text

        return await write_checked(
            self,
            actor_text(proposal.proposed_by, who),
            self._store_proposal,
            proposal,
            entries,
            who,
            now,
            require_execute,
        )

    async def create_proposals(
        self,
        proposals: Sequence[ActionProposal],
        audits: Sequence[AuditEntry],
        *,
        require_execute: bool = False,
        identity: str | None = None,
    ) -> list[ActionProposal]:
        """Insert many proposals, each with its audit event, in one transaction (all or
        none)."""
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            for label in {p.proposed_by for p in proposals}:
                names = [p.action_name for p in proposals if p.proposed_by == label]
                check_agent(conn, label, who, names, now)
            held = require_execute and safety.require_execute(conn)
            ready, entries = [], []
            for proposal, e in zip(proposals, audits, strict=True):
                if held:
                    proposal, (e,) = with_approval(proposal, [e])
                ready.append(proposal)
                entries.append(e)
            ids = insert_proposals(conn, ready, who)
            stored = [with_id(p, new_id) for p, new_id in zip(ready, ids, strict=True)]
            # The events after the rows: one read of the chain's head for all of them.
            audit_log.append_all(conn, entries, now, [p.id for p in stored])
            return stored

        label = proposals[0].proposed_by if proposals else ""
        return await write_checked(self, actor_text(label, who), fn)

    async def get_proposal(self, proposal_id: int) -> ActionProposal | None:
        def fn(conn: sqlite3.Connection) -> ActionProposal | None:
            row = conn.execute(PROPOSAL_SQL, (proposal_id,)).fetchone()
            return row_to_proposal(row) if row else None

        return await self._call(fn)

    async def list_proposals(
        self,
        status: ActionStatus | None = None,
        limit: int | None = 1000,
        offset: int = 0,
        ticket_id: int | None = None,
    ) -> list[ActionProposal]:
        """Newest first, bounded by ``limit`` (None for everything)."""
        sql, params = proposals_query(status, ticket_id, limit, offset)

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            return [row_to_proposal(r) for r in conn.execute(sql, params).fetchall()]

        return await self._call(fn)

    async def list_proposals_by(self, proposed_by: str, limit: int = 20) -> list[ActionProposal]:
        """The newest proposals recorded with this ``proposed_by`` (an agent's own)."""

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            rows = conn.execute(PROPOSED_BY_SQL, (proposed_by, limit)).fetchall()
            return [row_to_proposal(r) for r in rows]

        return await self._call(fn)

    async def validate_proposal(self, proposal_id: int, actor: str = "system") -> None:
        """proposed -> validated, audited."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            cur = conn.execute(VALIDATE_SQL, (now, proposal_id))
            if cur.rowcount != 1:
                p = fetch_proposal(conn, proposal_id)
                raise InvalidTransitionError(
                    f"action {proposal_id} is {p.status.value}, not proposed"
                )
            audit_log.append(conn, AuditEntry("validated", {}, actor, proposal_id), now)

        await self._write(fn)

    async def cancel_all_pending(
        self, cancelled_by: str = "system", reason: str = "cancelled"
    ) -> int:
        """Cancel every proposed, validated and retry-waiting action; returns the count."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> int:
            ids = cancel(conn, CANCEL_ALL_PENDING_SQL, now, cancelled_by, reason)
            audit_log.append_all(
                conn,
                [AuditEntry("cancelled", {"reason": reason}, cancelled_by, i) for i in ids],
                now,
            )
            return len(ids)

        return await self._write(fn)

    async def approve_proposal(
        self,
        proposal_id: int,
        approved_by: str = "user",
        *,
        identity: str | None = None,
        audit: bool = True,
        fingerprint: tuple[str, str] | None = None,
    ) -> ActionProposal:
        """Approve a pending action. Workflow steps are approved through their workflow.
        ``identity`` (default: this process's OS account) is who the four-eyes rule of the
        database's policy compares with the proposer; ``approved_by`` is a label beside it.
        ``fingerprint`` (SHA-256, canonical JSON) binds the approval to what will run.
        An action past its expiry is expired instead (ApprovalError)."""
        now_dt = self.clock.now()
        now = to_db(now_dt)
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> ActionProposal | None:
            p = fetch_proposal(conn, proposal_id)
            if p.workflow_id is not None:
                raise ApprovalError(
                    f"action {proposal_id} is step {p.execution_order + 1} of workflow "
                    f"{p.workflow_id}; approve the workflow instead"
                )
            check_approvable(p.status, p.approved_at, p.rejected_at, f"action {proposal_id}")
            if lapsed(p.expires_at, now_dt):
                return expire_at_approval(conn, proposal_id, now or "")
            check_four_eyes(conn, False, proposal_id, who, f"action {proposal_id}")
            cur = conn.execute(APPROVE_SQL, (now, approved_by, who, proposal_id))
            if cur.rowcount != 1:
                raise InvalidTransitionError(f"action {proposal_id} changed meanwhile")
            if fingerprint is not None:
                fingerprints.bind(conn, proposal_id, *fingerprint)
            if audit:
                # The parameters approved, so an edit of the row after approval shows.
                data = {"parameters_sha256": parameters_sha256(p.parameters)}
                if fingerprint is not None:
                    data["fingerprint_sha256"] = fingerprint[0]
                entry = AuditEntry("approved", data, actor_text(approved_by, who), proposal_id)
                audit_log.append(conn, entry, now)
            return fetch_proposal(conn, proposal_id)

        approved = await self._write(fn)
        if approved is None:
            raise ApprovalError(
                f"action {proposal_id} expired before it was approved; it is "
                "cancelled (propose it again if it is still needed)"
            )
        return approved

    async def reject_proposal(
        self,
        proposal_id: int,
        rejected_by: str = "user",
        reason: str = "",
        *,
        audit: bool = True,
        identity: str | None = None,
    ) -> ActionProposal:
        """Reject a pending action: it is cancelled and never runs."""
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> ActionProposal:
            p = fetch_proposal(conn, proposal_id)
            if p.workflow_id is not None:
                raise ApprovalError(
                    f"action {proposal_id} belongs to workflow {p.workflow_id}; reject the "
                    "workflow instead"
                )
            check_approvable(p.status, p.approved_at, p.rejected_at, f"action {proposal_id}")
            cur = conn.execute(
                REJECT_SQL, (now, rejected_by, reason, now, rejected_by, now, who, who, proposal_id)
            )
            if cur.rowcount != 1:
                raise InvalidTransitionError(f"action {proposal_id} changed meanwhile")
            if audit:
                audit_log.append(
                    conn,
                    AuditEntry(
                        "rejected", {"reason": reason}, actor_text(rejected_by, who), proposal_id
                    ),
                    now,
                )
            return fetch_proposal(conn, proposal_id)

        return await self._write(fn)

    async def cancel_proposal(
        self,
        proposal_id: int,
        cancelled_by: str,
        reason: str = "cancelled",
        *,
        identity: str | None = None,
    ) -> ActionProposal:
        """Cancel one action. A running one is asked to stop (its runner records it).

        Cancelling a workflow step cancels the whole workflow.
        """
        now = self._now()
        who = identity or current_identity().text
        shown = actor_text(cancelled_by, who)

        def fn(conn: sqlite3.Connection) -> ActionProposal:
            p = fetch_proposal(conn, proposal_id)
            if p.workflow_id is not None:
                cancel_workflow_tx(conn, p.workflow_id, cancelled_by, reason, now, identity=who)
                return fetch_proposal(conn, proposal_id)
            if p.status == ActionStatus.EXECUTING:
                conn.execute(STOP_ONE_SQL, (reason, cancelled_by, who, proposal_id))
                audit_log.append(
                    conn,
                    AuditEntry("cancel_requested", {"reason": reason}, shown, proposal_id),
                    now,
                )
                return fetch_proposal(conn, proposal_id)
            ids = cancel(conn, CANCEL_ONE_SQL, now, cancelled_by, reason, who, id=proposal_id)
            if not ids:
                raise InvalidTransitionError(
                    f"action {proposal_id} is {describe_status(p)}; only a pending, "
                    "scheduled, retry-waiting or running action can be cancelled"
                )
            audit_log.append(
                conn, AuditEntry("cancelled", {"reason": reason}, shown, proposal_id), now
            )
            return fetch_proposal(conn, proposal_id)

        return await self._write(fn)

    async def expire_proposals(self) -> list[int]:
        """Cancel unapproved actions whose ``expires_at`` has passed (reason "expired")."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> list[int]:
            ids = cancel(conn, CANCEL_EXPIRED_SQL, now, "system", "expired")
            audit_log.append_all(conn, [AuditEntry("expired", {}, "system", i) for i in ids], now)
            return ids

        if not await self._call(has_expired, now):
            return []
        return await self._write(fn)
