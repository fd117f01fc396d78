"""Leases: a runner renews the lease on what it runs; an action whose lease ran out was
left by a runner that is lost, and is recovered (its attempt failed, retried if it may be).
Also when the runner must next wake up."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta

from operator_core.clock import from_db, to_db
from operator_core.db import audit, faults
from operator_core.db.cancel import end_cancelled
from operator_core.db.connection import Store
from operator_core.db.lost import LOST_ATTEMPTS_SQL, LostAttempt, LostNote
from operator_core.db.records import AuditEntry
from operator_core.db.rows import row_to_proposal
from operator_core.db.runner_cycle import fail_tx

# The next time something becomes due: only future times count (a past one is either
# claimable now or waiting for something else, such as an approval). Each MIN reads the end
# of its own index (a spent budget's next slot: a scan of its one-row-per-action table).
NEXT_WAKEUP_SQL = """
SELECT MIN(t) FROM (
    SELECT MIN(scheduled_at) AS t FROM action_proposals INDEXED BY idx_validated_scheduled
        WHERE status = 'validated' AND scheduled_at IS NOT NULL AND scheduled_at > :now
    UNION ALL SELECT MIN(next_retry_at) FROM action_proposals INDEXED BY idx_retry_due
        WHERE status = 'failed' AND next_retry_at IS NOT NULL AND next_retry_at > :now
    UNION ALL SELECT MIN(expires_at) FROM action_proposals INDEXED BY idx_action_proposals_expiry
        WHERE expires_at IS NOT NULL AND approved_at IS NULL AND expires_at > :now
    UNION ALL SELECT MIN(lease_expires_at) FROM action_proposals
        INDEXED BY idx_action_proposals_state
        WHERE status = 'executing' AND status <> 'validated' AND lease_expires_at > :now
    UNION ALL SELECT MIN(next_slot_at) FROM budget_waits WHERE next_slot_at > :now) AS due
"""

# Whether a lease has run out (idx_action_proposals_state).
LEASE_PROBE_SQL = """
SELECT 1 FROM action_proposals INDEXED BY idx_action_proposals_state
WHERE status = 'executing' AND status <> 'validated' AND lease_expires_at < :now
LIMIT 1
"""

# Executing actions whose lease ran out, but the caller's own (idx_action_proposals_state).
EXPIRED_LEASES_SQL = """
SELECT * FROM action_proposals INDEXED BY idx_action_proposals_state
WHERE status = 'executing' AND status <> 'validated'
    AND lease_expires_at IS NOT NULL AND lease_expires_at < ? AND claimed_by IS NOT ?
LIMIT 1000
"""

# Close a lost runner's open attempt of an action (idx_action_records_proposal).
CLOSE_LOST_ATTEMPT_SQL = """
UPDATE action_records SET completed_at = ?, success = 0, error_message = ?
WHERE proposal_id = ? AND completed_at IS NULL
"""

# Extend the lease on this runner's executing actions ({marks}: one ? per id).
RENEW_SQL = """
UPDATE action_proposals SET lease_expires_at = ?
WHERE claimed_by = ? AND status = 'executing' AND id IN ({marks})
"""

# This runner's executing actions that someone asked to stop (idx_action_proposals_state).
STOP_REQUESTED_SQL = """
SELECT id, cancel_reason FROM action_proposals
WHERE status = 'executing' AND status <> 'validated' AND claimed_by = ?
    AND cancel_requested = 1
"""


def recover_one(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    retry_delay: Callable[[int], float],
    now_dt: datetime,
    note: LostNote | None,
) -> None:
    """Close the attempt of a runner that was lost (``note``: what was done about its
    processes); retry the action if the note allows, or cancel it if a stop was asked."""
    now = to_db(now_dt)
    p = row_to_proposal(row)
    runner = p.claimed_by or "?"
    error = f"runner lost ({runner})" + (f"; {note.text}" if note else "")
    conn.execute(CLOSE_LOST_ATTEMPT_SQL, (now, error, p.id))
    if p.cancel_requested:
        end_cancelled(conn, p, None, None, {"while": "runner lost"}, now)
        return
    data = (
        {"runner": runner}
        if note is None
        else {"runner": runner, "processes": note.text, "retry": note.retry}
    )
    audit.append(conn, AuditEntry("runner_lost", data, "runner", p.id, p.workflow_id), now)
    fail_tx(
        conn,
        p.id,
        runner,
        error,
        note is None or note.retry,
        retry_delay(p.retry_count),
        now_dt,
        "runner",
    )


def has_expired_leases(conn: sqlite3.Connection, now: str) -> bool:
    return conn.execute(LEASE_PROBE_SQL, {"now": now}).fetchone() is not None


class LeaseOps(Store):
    """Leases, lost runners and wake-ups, as ``ActionDB`` offers them."""

    async def renew_leases(self, runner_id: str, ids: Sequence[int], lease_seconds: float) -> None:
        if not ids:
            return
        lease = to_db(self.clock.now() + timedelta(seconds=lease_seconds))
        marks = ",".join("?" * len(ids))

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(RENEW_SQL.format(marks=marks), (lease, runner_id, *ids))

        await self._call(fn)

    async def stop_requested(self, runner_id: str) -> dict[int, str]:
        """Our executing actions that someone asked to stop, with the reason."""

        def fn(conn: sqlite3.Connection) -> dict[int, str]:
            rows = conn.execute(STOP_REQUESTED_SQL, (runner_id,)).fetchall()
            return {r[0]: r[1] or "cancelled" for r in rows}

        return await self._call(fn)

    async def lost_attempts(self, runner_id: str | None = None) -> list[LostAttempt]:
        """The open attempts of actions whose lease ran out, with where their commands ran.
        ``runner_id``: the caller's own are not lost (it is alive, maybe unable to renew)."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> list[LostAttempt]:
            rows = conn.execute(LOST_ATTEMPTS_SQL, {"now": now, "runner": runner_id})
            return [LostAttempt(*row) for row in rows]

        return await self._call(fn)

    async def recover_expired_leases(
        self,
        retry_delay: Callable[[int], float],
        notes: Mapping[int, LostNote] | None = None,
        only: Collection[int] | None = None,
        runner_id: str | None = None,
    ) -> list[int]:
        """Actions left executing by a runner whose lease expired: record the lost attempt as
        failed ("runner lost", with what ``notes`` says of its processes) and retry it if
        attempts remain and its note allows (cancel it if a stop was asked).
        ``retry_delay(retry_count)`` gives the backoff. With ``only``, just those actions
        (the ones whose processes the caller has seen to). ``runner_id``: the caller's own
        actions are not lost (it is alive), whatever their lease says."""
        now_dt = self.clock.now()
        now = to_db(now_dt)
        notes = notes or {}

        def fn(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(EXPIRED_LEASES_SQL, (now, runner_id)).fetchall()
            recovered = []
            for row in rows:
                if only is not None and row["id"] not in only:
                    continue
                # Each apart: one that cannot be read or retried is failed for good.
                faults.apart(
                    conn,
                    row["id"],
                    None,
                    "runner lost, then: ",
                    now_dt,
                    recover_one,
                    row,
                    retry_delay,
                    now_dt,
                    notes.get(row["id"]),
                )
                recovered.append(row["id"])
            return recovered

        if not await self._call(has_expired_leases, now):
            return []
        return await self._write(fn)

    async def next_wakeup(self, after: datetime | None = None) -> datetime | None:
        """The earliest time after ``after`` (default now) at which something becomes due
        (schedule, retry, expiry, or a lease running out); None if nothing is waiting for a
        time. The runner passes the time its last cycle looked: what became due since then
        must wake it at once, not be skipped as past."""

        now = self._now() if after is None else to_db(after)

        def fn(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(NEXT_WAKEUP_SQL, {"now": now}).fetchone()
            return row[0] if row else None

        text = await self._call(fn)
        try:
            return from_db(text)
        except (TypeError, ValueError):  # a time written by hand: look again in a second
            return self.clock.now() + timedelta(seconds=1)
