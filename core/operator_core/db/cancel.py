"""How actions and workflows are cancelled, each cancel one named statement written out.

What a cancel stops: proposed and validated actions and those waiting for a retry. An
action asked to stop (``cancel_requested``) is never claimed again, so every transaction
that ends one of its attempts (failure, timeout, shutdown, a lost runner) ends it cancelled
(``end_cancelled``): a retry or a requeue would leave it waiting for ever.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from operator_core.db import audit
from operator_core.db.records import AuditEntry
from operator_core.db.rows import fetch_proposal, fetch_workflow
from operator_core.errors import InvalidTransitionError
from operator_core.identity import actor_text
from operator_core.model.states import WorkflowStatus

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal

# One action, if pending or retry-waiting (by primary key).
CANCEL_ONE_SQL = """
UPDATE action_proposals SET status = 'cancelled', cancelled_at = :now, cancelled_by = :by,
    cancel_reason = :reason, next_retry_at = NULL, finished_at = :now,
    cancelled_identity = :identity
WHERE id = :id
    AND (status IN ('proposed', 'validated') OR (status = 'failed' AND next_retry_at IS NOT NULL))
RETURNING id
"""

# Ask a running action to stop; its runner ends it cancelled (by primary key).
STOP_ONE_SQL = """
UPDATE action_proposals SET cancel_requested = 1, cancel_reason = ?, cancelled_by = ?,
    cancelled_identity = ?
WHERE id = ? AND status = 'executing'
"""

# Unapproved actions needing approval whose expiry has passed (idx_action_proposals_expiry).
CANCEL_EXPIRED_SQL = """
UPDATE action_proposals SET status = 'cancelled', cancelled_at = :now, cancelled_by = :by,
    cancel_reason = :reason, next_retry_at = NULL, finished_at = :now,
    cancelled_identity = :identity
WHERE expires_at IS NOT NULL AND expires_at <= :now AND approved_at IS NULL
    AND requires_approval <> 0
    AND (status IN ('proposed', 'validated') OR (status = 'failed' AND next_retry_at IS NOT NULL))
RETURNING id
"""

# Every pending step of one workflow (idx_action_proposals_workflow).
CANCEL_STEPS_SQL = """
UPDATE action_proposals SET status = 'cancelled', cancelled_at = :now, cancelled_by = :by,
    cancel_reason = :reason, next_retry_at = NULL, finished_at = :now,
    cancelled_identity = :identity
WHERE workflow_id = :workflow
    AND (status IN ('proposed', 'validated') OR (status = 'failed' AND next_retry_at IS NOT NULL))
RETURNING id
"""

# The pending steps of one workflow after step :order (idx_action_proposals_workflow).
CANCEL_LATER_STEPS_SQL = """
UPDATE action_proposals SET status = 'cancelled', cancelled_at = :now, cancelled_by = :by,
    cancel_reason = :reason, next_retry_at = NULL, finished_at = :now,
    cancelled_identity = :identity
WHERE workflow_id = :workflow AND execution_order > :order
    AND (status IN ('proposed', 'validated') OR (status = 'failed' AND next_retry_at IS NOT NULL))
RETURNING id
"""

# Close a workflow as cancelled (by primary key).
CANCEL_WORKFLOW_SQL = "UPDATE workflows SET status = 'cancelled', finished_at = ? WHERE id = ?"

# Ask a workflow's running steps to stop; their runners end them cancelled.
STOP_RUNNING_STEPS_SQL = """
UPDATE action_proposals SET cancel_requested = 1, cancel_reason = ?, cancelled_by = ?,
    cancelled_identity = ?
WHERE workflow_id = ? AND status = 'executing'
RETURNING id
"""

# Fail an open workflow (by primary key).
FAIL_WORKFLOW_SQL = """
UPDATE workflows SET status = 'failed', finished_at = ?
WHERE id = ? AND status IN ('pending', 'in_progress')
"""

# End an action asked to stop as cancelled: held by :held (the runner whose attempt ended)
# or, :held NULL, by anyone or no one; never one already finished.
END_CANCELLED_SQL = """
UPDATE action_proposals SET status = 'cancelled', cancelled_at = :now, finished_at = :now,
    cancel_reason = COALESCE(cancel_reason, :reason), next_retry_at = NULL,
    claimed_by = NULL, lease_expires_at = NULL
WHERE id = :id AND status NOT IN ('completed', 'cancelled')
    AND (CAST(:held AS TEXT) IS NULL OR (status = 'executing' AND claimed_by = :held))
"""

# Actions asked to stop yet neither executing nor finished (an older version left such):
# never claimed, they would wait for ever. Read through idx_stop_leftover (schema v5), which
# holds nothing else.
STOP_LEFTOVERS_SQL = """
SELECT id FROM action_proposals INDEXED BY idx_stop_leftover
WHERE cancel_requested <> 0
    AND (status IN ('proposed', 'validated') OR (status = 'failed' AND next_retry_at IS NOT NULL))
"""


def cancel(
    conn: sqlite3.Connection,
    sql: str,
    now: str,
    by: str,
    reason: str,
    identity: str | None = None,
    **where: Any,
) -> list[int]:
    """Run one of the cancels above (``where``: its own parameters); the ids it cancelled,
    in order. ``identity``: the OS account of a person who cancelled (None: the system)."""
    params: Mapping[str, Any] = {
        "now": now,
        "by": by,
        "reason": reason,
        "identity": identity,
        **where,
    }
    return sorted(r[0] for r in conn.execute(sql, params).fetchall())


def cancel_workflow_tx(
    conn: sqlite3.Connection,
    workflow_id: int,
    by: str,
    reason: str,
    now: str,
    strict: bool = True,
    identity: str | None = None,
) -> None:
    """Cancel an open workflow: its pending steps cancelled, its running ones asked to stop.
    Not strict: a workflow already closed is left as it is."""
    wf = fetch_workflow(conn, workflow_id)
    if wf.status not in (WorkflowStatus.PENDING, WorkflowStatus.IN_PROGRESS):
        if not strict:
            return
        raise InvalidTransitionError(
            f"workflow {workflow_id} is {wf.status.value}; only an open workflow can be cancelled"
        )
    conn.execute(CANCEL_WORKFLOW_SQL, (now, workflow_id))
    ids = cancel(conn, CANCEL_STEPS_SQL, now, by, reason, identity, workflow=workflow_id)
    running = conn.execute(STOP_RUNNING_STEPS_SQL, (reason, by, identity, workflow_id)).fetchall()
    shown = by if identity is None else actor_text(by, identity)
    audit.append(
        conn,
        AuditEntry(
            "workflow_cancelled",
            {"reason": reason, "steps": ids, "running": [r[0] for r in running]},
            shown,
            None,
            workflow_id,
        ),
        now,
    )
    for pid in ids:
        audit.append(
            conn, AuditEntry("cancelled", {"reason": reason}, shown, pid, workflow_id), now
        )


def fail_workflow(
    conn: sqlite3.Connection,
    workflow_id: int,
    order: int,
    step_id: int | None,
    error: str,
    actor: str,
    now: str,
) -> None:
    """Step ``order`` failed for good: fail its workflow and cancel the steps after it."""
    conn.execute(FAIL_WORKFLOW_SQL, (now, workflow_id))
    why = f"step {order + 1} failed"
    later = cancel(conn, CANCEL_LATER_STEPS_SQL, now, actor, why, workflow=workflow_id, order=order)
    for pid in later:
        audit.append(conn, AuditEntry("cancelled", {"reason": why}, actor, pid, workflow_id), now)
    audit.append(
        conn,
        AuditEntry(
            "workflow_failed", {"failed_step": step_id, "error": error}, actor, None, workflow_id
        ),
        now,
    )


def end_cancelled(
    conn: sqlite3.Connection,
    p: ActionProposal,
    held_by: str | None,
    reason: str | None,
    data: dict[str, Any],
    now: str | None,
    actor: str = "runner",
) -> None:
    """End ``p`` (asked to stop) as cancelled, with its audit event; its workflow is
    cancelled too. The reason is the one the stop was asked with, unless given.
    InvalidTransitionError if ``held_by`` no longer holds it."""
    why = reason or p.cancel_reason or "cancelled"
    cur = conn.execute(END_CANCELLED_SQL, {"now": now, "reason": why, "id": p.id, "held": held_by})
    if cur.rowcount != 1:
        if held_by is None:
            return  # already ended (e.g. by its workflow's cancel, a moment ago)
        raise InvalidTransitionError(f"action {p.id} is no longer held by {held_by}")
    audit.append(
        conn, AuditEntry("cancelled", {"reason": why, **data}, actor, p.id, p.workflow_id), now
    )
    if p.workflow_id is not None:
        cancel_workflow_tx(conn, p.workflow_id, actor, why, now, strict=False)  # type: ignore[arg-type]


def sweep_leftovers(conn: sqlite3.Connection, now: str | None) -> None:
    """End every action left asked to stop yet waiting (by an older version) as cancelled."""
    for (pid,) in conn.execute(STOP_LEFTOVERS_SQL).fetchall():
        end_cancelled(conn, fetch_proposal(conn, pid), None, None, {"while": "left waiting"}, now)
