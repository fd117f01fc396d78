"""How actions stop: the kill switch's transaction (for its puller, or for whoever catches up
with a kill file the database missed), ending an action that was asked to stop, and the
sweep of such actions an older version left waiting.

An action asked to stop (``cancel_requested``) is never claimed again, so every transaction
that ends one of its attempts (failure, timeout, shutdown, a lost runner) ends it cancelled:
a retry or a requeue would leave it waiting for ever. These run inside ``db.actions``'s
transactions, on its helpers; it imports this module where first used.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from operator_core.clock import to_db
from operator_core.db.actions import (
    _ALL_CANCELLABLE,
    _EXECUTING,
    _STOP_LEFTOVERS,
    KILL_SWITCH_ACTOR_REASON,
    AuditEntry,
    _append_audit,
    _cancel_rows,
    _cancel_workflow_tx,
    _fetch_proposal,
    _models,
    _set_mode,
)
from operator_core.db.killfile import KillNotice
from operator_core.errors import InvalidTransitionError

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal, KillSwitchResult

# The mode, and since when: a kill switch already recorded for this very pull shows here.
_MODE_SQL = "SELECT mode, changed_at FROM safety_state WHERE id = 1"

# The last kill switch recorded (newest first by id; it is the most recent event of all).
_LAST_KILL_SQL = """
SELECT event_data FROM action_audit_log WHERE event_type = 'kill_switch'
ORDER BY id DESC LIMIT 1
"""

# Ask every executing action to stop; its runner stops it and records it cancelled.
_SIGNAL_EXECUTING_SQL = f"""
UPDATE action_proposals SET cancel_requested = 1, cancel_reason = ?, cancelled_by = ?
WHERE {_EXECUTING} RETURNING id
"""

# Cancel every open workflow.
_CANCEL_WORKFLOWS_SQL = """
UPDATE workflows SET status = 'cancelled', finished_at = ?
WHERE status IN ('pending', 'in_progress') RETURNING id
"""

# End an action asked to stop as cancelled: held by :held (the runner whose attempt ended)
# or, :held NULL, by anyone or no one; never one already finished.
_END_CANCELLED_SQL = """
UPDATE action_proposals SET status = 'cancelled', cancelled_at = :now, finished_at = :now,
    cancel_reason = COALESCE(cancel_reason, :reason), next_retry_at = NULL,
    claimed_by = NULL, lease_expires_at = NULL
WHERE id = :id AND status NOT IN ('completed', 'cancelled')
    AND (:held IS NULL OR (status = 'executing' AND claimed_by = :held))
"""


def kill_switch_tx(
    conn: sqlite3.Connection,
    actor: str,
    now: str,
    notice: KillNotice | None,
    recorded_by: str | None,
) -> KillSwitchResult:
    """The kill switch in the database: OBSERVE since the pull, every pending, scheduled and
    retry-waiting action and open workflow cancelled, executing ones asked to stop, and the
    audit events. ``recorded_by``: the process catching up with a kill file written while
    the database was busy (None: the puller itself)."""
    since = to_db(notice.engaged_at) if notice is not None and notice.engaged_at else now
    mode = conn.execute(_MODE_SQL).fetchone()
    if notice is not None and recorded_by is None and mode and tuple(mode) == ("observe", since):
        # A runner caught up with this very pull before its puller had the lock: say what
        # that did, rather than record the pull twice.
        last = conn.execute(_LAST_KILL_SQL).fetchone()
        return _models().KillSwitchResult.model_validate_json(last[0])  # type: ignore[no-any-return]
    _set_mode(conn, "observe", actor, KILL_SWITCH_ACTOR_REASON, since)
    cancelled = _cancel_rows(conn, _ALL_CANCELLABLE, (), now, actor, KILL_SWITCH_ACTOR_REASON)
    executing = conn.execute(_SIGNAL_EXECUTING_SQL, (KILL_SWITCH_ACTOR_REASON, actor)).fetchall()
    workflows = conn.execute(_CANCEL_WORKFLOWS_SQL, (now,)).fetchall()
    result: KillSwitchResult = _models().KillSwitchResult(
        cancelled_actions=cancelled,
        cancelled_workflows=sorted(r[0] for r in workflows),
        executing_signalled=sorted(r[0] for r in executing),
    )
    data: dict[str, Any] = result.model_dump(
        include={"cancelled_actions", "cancelled_workflows", "executing_signalled"}
    )
    if notice is not None:
        data["engaged_at"] = since
    if recorded_by is not None:
        data["recorded_by"] = recorded_by
    _append_audit(conn, AuditEntry("kill_switch", data, actor), now)
    for wf in result.cancelled_workflows:
        _append_audit(
            conn,
            AuditEntry("workflow_cancelled", {"reason": KILL_SWITCH_ACTOR_REASON}, actor, None, wf),
            now,
        )
    for pid in cancelled:
        _append_audit(
            conn, AuditEntry("cancelled", {"reason": KILL_SWITCH_ACTOR_REASON}, actor, pid), now
        )
    return result


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
    cur = conn.execute(_END_CANCELLED_SQL, {"now": now, "reason": why, "id": p.id, "held": held_by})
    if cur.rowcount != 1:
        if held_by is None:
            return  # already ended (e.g. by its workflow's cancel, a moment ago)
        raise InvalidTransitionError(f"action {p.id} is no longer held by {held_by}")
    _append_audit(
        conn, AuditEntry("cancelled", {"reason": why, **data}, actor, p.id, p.workflow_id), now
    )
    if p.workflow_id is not None:
        _cancel_workflow_tx(conn, p.workflow_id, actor, why, now, strict=False)


def sweep_leftovers(conn: sqlite3.Connection, now: str | None) -> None:
    """End every action left asked to stop yet waiting (by an older version) as cancelled."""
    for (pid,) in conn.execute(_STOP_LEFTOVERS).fetchall():
        end_cancelled(conn, _fetch_proposal(conn, pid), None, None, {"while": "left waiting"}, now)
