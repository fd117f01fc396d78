"""Safety mode and the kill switch: every statement the kill switch runs is in this file.

The kill switch, in one transaction: OBSERVE since the pull, every pending, scheduled and
retry-waiting action, every open workflow and every open automation execution cancelled,
executing actions asked to stop (their runners stop them and record them cancelled), and the
audit events. A kill file beside the database (``killfile.py``) stands for a pull the database
has not recorded yet (it was busy): claims, proposals and resume honour it, and the first
write that sees it records the pull for whoever pulled it.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from operator_core.clock import from_db, to_db
from operator_core.db import audit
from operator_core.db.cancel import cancel
from operator_core.db.connection import Store
from operator_core.db.killfile import KILL_REASON, PENDING_REASON, KillNotice
from operator_core.db.records import AuditEntry
from operator_core.db.rows import models
from operator_core.db.shared import require_exclusive
from operator_core.errors import DatabaseError, ObserveOnlyError

if TYPE_CHECKING:
    from operator_core.model.types import KillSwitchResult

KILL_SWITCH_ACTOR_REASON = KILL_REASON

# The mode, and since when: a kill switch already recorded for this very pull shows here.
MODE_SINCE_SQL = "SELECT mode, changed_at, reason FROM safety_state WHERE id = 1"

# The last kill switch recorded (newest first by id; it is the most recent event of all).
LAST_KILL_SQL = """
SELECT event_data FROM action_audit_log WHERE event_type = 'kill_switch'
ORDER BY id DESC LIMIT 1
"""

# Set the mode (the one row of safety_state).
SET_MODE_SQL = """
INSERT INTO safety_state (id, mode, changed_at, changed_by, reason) VALUES (1, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET mode = excluded.mode, changed_at = excluded.changed_at,
    changed_by = excluded.changed_by, reason = excluded.reason
"""

# Cancel every pending, scheduled and retry-waiting action. Each part of the id set is read
# through its own partial index (the planner does not match partial indexes to the branches
# of an OR): proposed ones through idx_action_proposals_state, validated ones through
# idx_ready_validated and idx_awaiting_approval, retry-waiting ones through idx_retry_due.
# It never walks the history.
CANCEL_ALL_PENDING_SQL = """
UPDATE action_proposals SET status = 'cancelled', cancelled_at = :now, cancelled_by = :by,
    cancel_reason = :reason, next_retry_at = NULL, finished_at = :now,
    cancelled_identity = :identity
WHERE id IN (
        SELECT id FROM action_proposals WHERE status = 'proposed' AND status <> 'validated'
        UNION ALL
        SELECT id FROM action_proposals
        WHERE status = 'validated' AND (requires_approval = 0 OR approved_at IS NOT NULL)
        UNION ALL
        SELECT id FROM action_proposals
        WHERE status IN ('proposed', 'validated') AND requires_approval <> 0
            AND approved_at IS NULL AND status = 'validated'
        UNION ALL
        SELECT id FROM action_proposals INDEXED BY idx_retry_due
        WHERE next_retry_at IS NOT NULL AND status = 'failed')
    AND (status IN ('proposed', 'validated') OR (status = 'failed' AND next_retry_at IS NOT NULL))
RETURNING id
"""

# Ask every executing action to stop (idx_action_proposals_state, which holds every status
# but 'validated'); its runner stops it and records it cancelled.
SIGNAL_EXECUTING_SQL = """
UPDATE action_proposals SET cancel_requested = 1, cancel_reason = ?, cancelled_by = ?
WHERE status = 'executing' AND status <> 'validated'
RETURNING id
"""

# Cancel every open workflow.
CANCEL_WORKFLOWS_SQL = """
UPDATE workflows SET status = 'cancelled', finished_at = ?
WHERE status IN ('pending', 'in_progress') RETURNING id
"""

# What the kill switch would cancel now, each count through the indexes the cancels above
# walk (for a confirm dialog). Subqueries are named: PostgreSQL before 16 requires it.
PREVIEW_SQL = """
SELECT
    (SELECT COUNT(*) FROM (
        SELECT id FROM action_proposals WHERE status = 'proposed' AND status <> 'validated'
        UNION ALL
        SELECT id FROM action_proposals
        WHERE status = 'validated' AND (requires_approval = 0 OR approved_at IS NOT NULL)
        UNION ALL
        SELECT id FROM action_proposals
        WHERE status IN ('proposed', 'validated') AND requires_approval <> 0
            AND approved_at IS NULL AND status = 'validated') AS open_actions),
    (SELECT COUNT(*) FROM (
        SELECT id FROM action_proposals INDEXED BY idx_retry_due
        WHERE next_retry_at IS NOT NULL AND status = 'failed') AS retries),
    (SELECT COUNT(*) FROM action_proposals WHERE status = 'executing' AND status <> 'validated'),
    (SELECT COUNT(*) FROM workflows WHERE status IN ('pending', 'in_progress'))
"""

# The mode alone.
CURRENT_MODE_SQL = "SELECT mode FROM safety_state WHERE id = 1"

# Whether a write that needs EXECUTE may go on, and the database's approval mode.
REQUIRE_EXECUTE_SQL = """
SELECT mode, changed_at, changed_by, reason, (SELECT approval_mode FROM policy WHERE id = 1)
FROM safety_state WHERE id = 1
"""


def kill_switch_tx(
    conn: sqlite3.Connection,
    actor: str,
    now: str,
    notice: KillNotice | None,
    recorded_by: str | None,
) -> KillSwitchResult:
    """The kill switch in the database. ``recorded_by``: the process catching up with a kill
    file written while the database was busy (None: the puller itself)."""
    since = to_db(notice.engaged_at) if notice is not None and notice.engaged_at else now
    mode = conn.execute(MODE_SINCE_SQL).fetchone()
    if (
        notice is not None
        and recorded_by is None
        and mode
        and (mode[0], mode[1]) == ("observe", since)
        and mode[2] != PENDING_REASON  # PostgreSQL's row pulled without the lock: not yet
    ):
        # A runner caught up with this very pull before its puller had the lock: say what
        # that did, rather than record the pull twice.
        last = conn.execute(LAST_KILL_SQL).fetchone()
        return models().KillSwitchResult.model_validate_json(last[0])  # type: ignore[no-any-return]
    set_mode(conn, "observe", actor, KILL_SWITCH_ACTOR_REASON, since)  # type: ignore[arg-type]
    cancelled = cancel(conn, CANCEL_ALL_PENDING_SQL, now, actor, KILL_SWITCH_ACTOR_REASON)
    executing = conn.execute(SIGNAL_EXECUTING_SQL, (KILL_SWITCH_ACTOR_REASON, actor)).fetchall()
    workflows = conn.execute(CANCEL_WORKFLOWS_SQL, (now,)).fetchall()
    # Imported here: every ActionDB imports this module, and the dashboard's first frame
    # needs none of the automations' code.
    from operator_core.db import executions

    executions.cancel_all_open(conn, KILL_SWITCH_ACTOR_REASON, actor, now)
    result: KillSwitchResult = models().KillSwitchResult(
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
    reason = {"reason": KILL_SWITCH_ACTOR_REASON}
    audit.append_all(
        conn,
        [
            AuditEntry("kill_switch", data, actor),
            *(
                AuditEntry("workflow_cancelled", reason, actor, None, wf)
                for wf in result.cancelled_workflows
            ),
            *(AuditEntry("cancelled", reason, actor, pid) for pid in cancelled),
        ],
        now,
    )
    return result


def set_mode(conn: sqlite3.Connection, mode: str, actor: str, reason: str, now: str) -> None:
    conn.execute(SET_MODE_SQL, (mode, now, actor, reason))


def honour_kill_file(conn: sqlite3.Connection, mode: str | None, now: str, by: str) -> bool:
    """True if the kill file is there (one stat); then, if the database does not say OBSERVE
    yet, this transaction records the kill switch for whoever pulled it."""
    kill = getattr(conn, "kill_file", None)
    if kill is None or not kill.engaged():
        return False
    notice = kill.read() or KillNotice("unknown", None)
    if notice.reason == PENDING_REASON:  # PostgreSQL's row, as last read: read it here
        return record_row_pull(conn, now, by) or mode == "observe"
    if mode != "observe":
        require_exclusive(conn, "the kill switch is recorded for whoever pulled it")
        kill_switch_tx(conn, notice.actor, now, notice, by)
    return True


# Who set the safety mode, when and why (the primary key's one row).
SAFETY_ROW_SQL = "SELECT mode, changed_at, changed_by, reason FROM safety_state WHERE id = 1"


def record_row_pull(conn: sqlite3.Connection, now: str, by: str) -> bool:
    """PostgreSQL's kill switch pulled without the write lock (RowKillSwitch.engage: the row
    says OBSERVE, marked not yet recorded): record it in this transaction, as the puller
    would have (cancellations, events), for whoever pulled it. False if there is none."""
    row = conn.execute(SAFETY_ROW_SQL).fetchone()
    if row is None or row[3] != PENDING_REASON:
        return False
    require_exclusive(conn, "the kill switch is recorded for whoever pulled it")
    notice = KillNotice(str(row[2]), from_db(row[1]), PENDING_REASON)
    kill_switch_tx(conn, notice.actor, now, notice, by)
    return True


def require_execute(conn: sqlite3.Connection) -> bool:
    """Refuse the write transaction in hand while the mode is OBSERVE (ObserveOnlyError,
    with when, who and why); else whether the database's approval mode is on."""
    row = conn.execute(REQUIRE_EXECUTE_SQL).fetchone()
    if row is not None and row[0] != "execute":
        raise ObserveOnlyError(changed_at=from_db(row[1]), changed_by=row[2], reason=row[3])
    kill = getattr(conn, "kill_file", None)
    if kill is not None and kill.engaged():
        notice = kill.read() or KillNotice("unknown", None)
        raise ObserveOnlyError(
            changed_at=notice.engaged_at, changed_by=notice.actor, reason=PENDING_REASON
        )
    if row is None:
        return False
    return bool(row[4])


class SafetyOps(Store):
    """The kill switch and the safety mode, as ``ActionDB`` offers them."""

    async def kill_switch(self, actor: str, notice: KillNotice | None = None) -> KillSwitchResult:
        """OBSERVE mode; cancel every pending, scheduled and retry-waiting action and every
        open workflow; ask runners to stop executing ones. One transaction. ``notice``: the
        kill file this pull wrote (its time is when execution went off). No health check
        first: the emergency stop must work on a damaged file as long as it can."""
        return await self._write(kill_switch_tx, actor, self._now(), notice, None, check=False)

    async def preview_kill_switch(self) -> dict[str, int]:
        """What the kill switch would cancel now (for a confirm dialog)."""

        def fn(conn: sqlite3.Connection) -> dict[str, int]:
            row = conn.execute(PREVIEW_SQL).fetchone()
            return {
                "pending": row[0],
                "retry_waiting": row[1],
                "executing": row[2],
                "workflows": row[3],
            }

        return await self.read(fn)

    async def set_safety_mode(self, mode: str, actor: str, reason: str = "") -> bool:
        """Returns False if the mode was already that. EXECUTE first records a kill switch
        the database has not caught up with (it revives nothing), then removes the kill file
        under the write lock (a runner sees neither or both)."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> bool:
            if mode == "execute":  # a pull the database has not recorded is, first
                record_row_pull(conn, now, actor)
            current = conn.execute(CURRENT_MODE_SQL).fetchone()
            if mode == "execute" and honour_kill_file(conn, current and current[0], now, actor):
                current = None
                try:
                    self.kill_file.clear()
                except OSError as exc:
                    raise DatabaseError(
                        f"cannot remove the kill file {self.kill_file.path}: "
                        f"{exc.strerror}; execution stays off"
                    ) from exc
            if current is not None and current[0] == mode:
                return False
            set_mode(conn, mode, actor, reason, now)
            audit.append(
                conn,
                AuditEntry("safety_mode_changed", {"mode": mode, "reason": reason}, actor),
                now,
            )
            return True

        return await self._write(fn, check=mode != "observe")  # OBSERVE is never refused
