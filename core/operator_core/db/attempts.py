"""The runner's operations on ``ActionDB``: claim, record, retry, stop and requeue attempts,
each one transaction of ``runner_cycle.py``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from operator_core.db import audit
from operator_core.db.budgets import Budgets
from operator_core.db.cancel import end_cancelled
from operator_core.db.connection import NOT_NOW, Store
from operator_core.db.records import AttemptResult, AuditEntry, Claim
from operator_core.db.rows import fetch_proposal
from operator_core.db.runner_cycle import (
    claim_tx,
    close_record,
    fail_tx,
    finish_and_claim_tx,
    record_one,
    runner_cycle_tx,
)

# Give an interrupted action back to the queue, if this runner still holds it and no stop
# was asked meanwhile (by primary key).
REQUEUE_SQL = """
UPDATE action_proposals SET status = 'validated', claimed_by = NULL, lease_expires_at = NULL
WHERE id = ? AND claimed_by = ? AND status = 'executing' AND cancel_requested = 0
"""

# Where an open attempt's command runs (by primary key).
ATTEMPT_PROCESS_SQL = """
UPDATE action_records SET host = ?, pid = ?, pgid = ?, process_start = ?
WHERE id = ? AND completed_at IS NULL
"""


def alone(finished: Sequence[tuple[Claim, AttemptResult]], budgets: Budgets | None) -> bool:
    """A cycle that will need the write lock to itself (db/shared.py): budgets count in its
    transaction; a workflow step's end moves its workflow."""
    return bool(budgets) or any(c.proposal.workflow_id is not None for c, _ in finished)


class RunnerOps(Store):
    """What a runner asks of the database, each one transaction."""

    async def claim_ready(
        self, runner_id: str, limit: int, lease_seconds: float, only_id: int | None = None
    ) -> list[Claim]:
        """Atomically move up to ``limit`` ready actions to executing under our lease, with a
        record per attempt. Returns nothing while the safety mode is OBSERVE."""
        now_dt = self.clock.now()
        budgets = self.execution_budgets()

        def fn(conn: sqlite3.Connection) -> list[Claim]:
            return claim_tx(
                conn,
                runner_id,
                limit,
                lease_seconds,
                now_dt,
                only_id,
                self.approval_gate,
                budgets,
            )

        return await self._cycle(fn, alone=bool(budgets))

    async def finish_and_claim(
        self,
        runner_id: str,
        finished: Sequence[tuple[Claim, AttemptResult]],
        limit: int,
        lease_seconds: float,
    ) -> list[Claim]:
        """Record finished attempts and claim more work, in one transaction (the runner's hot
        path: one commit per batch instead of one per action)."""
        now_dt = self.clock.now()
        budgets = self.execution_budgets()

        def fn(conn: sqlite3.Connection) -> list[Claim]:
            return finish_and_claim_tx(
                conn,
                runner_id,
                finished,
                limit,
                lease_seconds,
                now_dt,
                self.approval_gate,
                budgets,
            )

        return await self._cycle(fn, alone=alone(finished, budgets))

    async def runner_cycle(
        self,
        runner_id: str,
        finished: Sequence[tuple[Claim, AttemptResult]],
        limit: int,
        lease_seconds: float,
    ) -> tuple[list[Claim], bool, bool]:
        """finish_and_claim plus the expiry and lost-lease probes, in one round trip:
        (claims, an unapproved proposal has expired, a lease has run out)."""
        budgets = self.execution_budgets()
        return await self._cycle(
            runner_cycle_tx,
            runner_id,
            finished,
            limit,
            lease_seconds,
            self.clock.now(),
            self.approval_gate,
            budgets,
            alone=alone(finished, budgets),
        )

    def runner_cycle_now(
        self,
        runner_id: str,
        finished: Sequence[tuple[Claim, AttemptResult]],
        limit: int,
        lease_seconds: float,
    ) -> tuple[list[Claim], bool, bool] | None:
        """``runner_cycle`` if it can run right here without waiting (no await, so nothing
        can interrupt it); None if it did not run (also before the database is open)."""
        done = self._write_now(
            runner_cycle_tx,
            runner_id,
            finished,
            limit,
            lease_seconds,
            self.clock.now(),
            self.approval_gate,
            self.execution_budgets(),
        )
        return None if done is NOT_NOW else done  # type: ignore[return-value]

    async def complete_attempt(
        self, claim: Claim, runner_id: str, result_data: dict[str, Any] | None
    ) -> None:
        """Success: close the record, complete the action, advance or complete its workflow."""
        await self.record_attempt(claim, runner_id, AttemptResult(True, result_data))

    async def fail_attempt(
        self,
        claim: Claim,
        runner_id: str,
        error: str,
        *,
        retryable: bool,
        retry_delay_seconds: float | None,
        result_data: dict[str, Any] | None = None,
    ) -> datetime | None:
        """Failure: close the record; schedule the retry if the action's own limit allows
        (returns its time), else fail it for good, failing its workflow and cancelling the
        steps after it."""
        return await self.record_attempt(
            claim,
            runner_id,
            AttemptResult(False, result_data, error, retryable, retry_delay_seconds),
        )

    async def record_attempt(
        self, claim: Claim, runner_id: str, result: AttemptResult
    ) -> datetime | None:
        """Record one finished attempt; returns the next retry time if one was scheduled."""
        now_dt = self.clock.now()

        def fn(conn: sqlite3.Connection) -> datetime | None:
            return record_one(conn, claim, runner_id, result, now_dt)

        return await self._write(fn)

    async def schedule_retry(
        self, proposal_id: int, error: str, retry_delay_seconds: float, actor: str = "system"
    ) -> datetime | None:
        """Seed API behind ``schedule_next_retry``: count a failure of a failed or executing
        action and schedule its retry, or fail it for good when its retries are spent."""
        now_dt = self.clock.now()

        def fn(conn: sqlite3.Connection) -> datetime | None:
            return fail_tx(conn, proposal_id, None, error, True, retry_delay_seconds, now_dt, actor)

        return await self._write(fn)

    async def cancel_attempt(self, claim: Claim, runner_id: str, reason: str) -> None:
        """A running attempt was stopped (kill switch, cancel or shutdown): record it as
        cancelled."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            close_record(conn, claim, False, f"cancelled: {reason}", None, now)
            end_cancelled(
                conn,
                claim.proposal,
                runner_id,
                reason,
                {"while": "executing", "attempt": claim.record.attempt},
                now,
            )

        await self._write(fn)

    async def requeue_attempt(self, claim: Claim, runner_id: str, reason: str) -> None:
        """Record an attempt as interrupted and give the action back to the queue without
        spending a retry (graceful runner shutdown: not the action's fault)."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            p = claim.proposal
            close_record(conn, claim, False, f"interrupted: {reason}", None, now)
            cur = conn.execute(REQUEUE_SQL, (p.id, runner_id))
            if cur.rowcount != 1:
                # Asked to stop meanwhile: back in the queue it would never be claimed.
                end_cancelled(
                    conn,
                    fetch_proposal(conn, p.id or 0),
                    runner_id,
                    None,
                    {"while": "interrupted", "attempt": claim.record.attempt},
                    now,
                )
                return
            audit.append(
                conn,
                AuditEntry(
                    "interrupted",
                    {"reason": reason, "attempt": claim.record.attempt},
                    "runner",
                    p.id,
                    p.workflow_id,
                ),
                now,
            )

        await self._write(fn)

    async def set_attempt_process(
        self, record_id: int, host: str, pid: int, pgid: int, start: str | None
    ) -> None:
        """Where an open attempt's command runs (once per command attempt, when it starts)."""

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(ATTEMPT_PROCESS_SQL, (host, pid, pgid, start, record_id))

        await self._write(fn)
