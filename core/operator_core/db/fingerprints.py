"""Approvals bound to a fingerprint of what runs, as the database keeps them.

An approval stores the fingerprint (SHA-256 and canonical JSON) in its own transaction; the
runner voids it in one transaction when what would run differs: the attempt it opened is
closed as not run with the reason, the action (and its workflow, with every step still to
run) goes back to awaiting approval, and an ``approval_voided`` event says why.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from operator_core.db import audit
from operator_core.db.encode import dumps
from operator_core.db.records import AuditEntry, Claim
from operator_core.errors import InvalidTransitionError

# The fingerprint an action's approval is bound to, and why its last one was voided
# (by primary key).
BINDING_SQL = """
SELECT fingerprint_sha256, fingerprint, approval_voided FROM action_proposals WHERE id = ?
"""

# Bind a just-approved action to its fingerprint; the approval clears a voided reason
# (by primary key).
BIND_SQL = """
UPDATE action_proposals SET fingerprint_sha256 = ?, fingerprint = ?, approval_voided = NULL
WHERE id = ? AND approved_at IS NOT NULL
"""

# A workflow's approval clears the reason its last one was voided (by primary key).
WORKFLOW_APPROVED_SQL = "UPDATE workflows SET approval_voided = NULL WHERE id = ?"

# Why a workflow's last approval was voided (by primary key).
WORKFLOW_VOIDED_SQL = "SELECT approval_voided FROM workflows WHERE id = ?"

# Close the attempt the claim opened: it did not run (by primary key).
NOT_RUN_SQL = """
UPDATE action_records SET completed_at = ?, success = 0, error_message = ?, result_data = ?
WHERE id = ? AND completed_at IS NULL
"""

# The claimed action goes back to awaiting approval: the approval and its fingerprint are
# cleared, the claim released; its retries so far are kept (by primary key).
VOID_SQL = """
UPDATE action_proposals SET status = 'validated', requires_approval = 1, approved_at = NULL,
    approved_by = NULL, approved_identity = NULL, fingerprint_sha256 = NULL,
    fingerprint = NULL, approval_voided = :reason, claimed_by = NULL, lease_expires_at = NULL,
    next_retry_at = NULL, updated_at = :now
WHERE id = :id AND status = 'executing' AND claimed_by = :runner
"""

# Its workflow waits for a new approval (by primary key); the steps already done stay done.
VOID_WORKFLOW_SQL = """
UPDATE workflows SET status = 'pending', requires_approval = 1, approved_at = NULL,
    approved_by = NULL, approved_identity = NULL, approval_voided = :reason
WHERE id = :workflow AND status IN ('pending', 'in_progress')
"""

# ... and so does every step of it still to run (idx_action_proposals_workflow).
VOID_STEPS_SQL = """
UPDATE action_proposals SET requires_approval = 1, approved_at = NULL, approved_by = NULL,
    approved_identity = NULL, fingerprint_sha256 = NULL, fingerprint = NULL
WHERE workflow_id = :workflow AND status IN ('proposed', 'validated')
"""


# Actions back awaiting approval because what runs changed, for the approvals pane
# (idx_approval_voided, partial: only such rows).
VOIDED_ACTIONS_SQL = """
SELECT id, approval_voided FROM action_proposals INDEXED BY idx_approval_voided
WHERE approval_voided IS NOT NULL AND approved_at IS NULL AND status = 'validated'
ORDER BY id LIMIT ?
"""

# Workflows back awaiting approval for the same reason (idx_workflows_status).
VOIDED_WORKFLOWS_SQL = """
SELECT id, approval_voided FROM workflows
WHERE status = 'pending' AND approval_voided IS NOT NULL AND approved_at IS NULL
ORDER BY id LIMIT ?
"""


@dataclass(frozen=True)
class Binding:
    """The fingerprint an action's approval is bound to (None: not approved, or approved
    before approvals were bound), and why its last approval was voided."""

    sha256: str | None
    canonical: str | None
    voided: str | None


def binding(conn: sqlite3.Connection, proposal_id: int) -> Binding:
    row = conn.execute(BINDING_SQL, (proposal_id,)).fetchone()
    return Binding(None, None, None) if row is None else Binding(row[0], row[1], row[2])


def workflow_voided(conn: sqlite3.Connection, workflow_id: int) -> str | None:
    row = conn.execute(WORKFLOW_VOIDED_SQL, (workflow_id,)).fetchone()
    return None if row is None else row[0]


def bind(conn: sqlite3.Connection, proposal_id: int, sha256: str, canonical: str) -> None:
    """In the approval's transaction, after the approval itself."""
    if conn.execute(BIND_SQL, (sha256, canonical, proposal_id)).rowcount != 1:
        raise InvalidTransitionError(f"action {proposal_id} changed meanwhile")


def bind_steps(
    conn: sqlite3.Connection, workflow_id: int, steps: Mapping[int, tuple[str, str]]
) -> None:
    """In a workflow's approval transaction: each step approved with it, bound."""
    conn.execute(WORKFLOW_APPROVED_SQL, (workflow_id,))
    conn.executemany(BIND_SQL, [(sha, canonical, pid) for pid, (sha, canonical) in steps.items()])


def void_tx(
    conn: sqlite3.Connection,
    claim: Claim,
    runner_id: str,
    reason: str,
    approved: str | None,
    now_sha256: str | None,
    now: str,
) -> None:
    """The claimed attempt does not start: recorded as not run, the action (and its
    workflow) back to awaiting approval, audited. Raises InvalidTransitionError when the
    claim is stale (its attempt was recorded meanwhile, e.g. by the kill switch)."""
    p = claim.proposal
    data = {"not_run": True, "fingerprint_sha256": now_sha256, "approved_sha256": approved}
    cur = conn.execute(NOT_RUN_SQL, (now, reason, dumps(data), claim.record.id))
    if cur.rowcount != 1:
        raise InvalidTransitionError(f"attempt {claim.record.attempt} of action {p.id} was over")
    if (
        conn.execute(
            VOID_SQL, {"id": p.id, "reason": reason, "now": now, "runner": runner_id}
        ).rowcount
        != 1
    ):
        raise InvalidTransitionError(f"action {p.id} is no longer executing")
    if p.workflow_id is not None:
        conn.execute(VOID_WORKFLOW_SQL, {"workflow": p.workflow_id, "reason": reason})
        conn.execute(VOID_STEPS_SQL, {"workflow": p.workflow_id})
    audit.append(
        conn,
        AuditEntry(
            "approval_voided",
            {
                "reason": reason,
                "attempt": claim.record.attempt,
                "runner": runner_id,
                "approved_sha256": approved,
                "now_sha256": now_sha256,
            },
            "runner",
            p.id,
            p.workflow_id,
        ),
        now,
    )


def voided_awaiting(conn: sqlite3.Connection, limit: int) -> dict[tuple[str, int], str]:
    """Why each action (``("action", id)``) and workflow (``("workflow", id)``) awaiting
    approval again had its approval voided."""
    out = {("action", i): why for i, why in conn.execute(VOIDED_ACTIONS_SQL, (limit,))}
    out.update({("workflow", i): why for i, why in conn.execute(VOIDED_WORKFLOWS_SQL, (limit,))})
    return out
