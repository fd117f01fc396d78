"""The runner's cycle: claim ready work, record finished attempts, schedule retries and
advance workflows, in the transactions ``ActionDB.runner_cycle`` and its kin run.

A claim is one statement (``CLAIM_SQL``) under the runner's lease; a batch of finished
attempts is recorded at once, and one by one in savepoints only when one of them cannot be
(``faults.apart``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from operator_core.anchor.chain import parameters_sha256
from operator_core.clock import to_db
from operator_core.db import audit, faults
from operator_core.db import budgets as budget
from operator_core.db.budgets import Budgets
from operator_core.db.cancel import end_cancelled, fail_workflow, sweep_leftovers
from operator_core.db.claim_sql import CLAIM_SQL
from operator_core.db.encode import dumps
from operator_core.db.policy import ApprovalGate, screen_claims
from operator_core.db.records import AttemptResult, AuditEntry, Claim
from operator_core.db.rows import fetch_proposal, opened_record, row_to_proposal
from operator_core.db.safety import honour_kill_file
from operator_core.db.shared import require_exclusive
from operator_core.errors import InvalidTransitionError
from operator_core.model.states import ActionStatus

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal

# The safety mode and the database's approval mode, which every claim obeys.
CLAIM_MODE_SQL = """
SELECT mode, (SELECT approval_mode FROM policy WHERE id = 1) FROM safety_state WHERE id = 1
"""

# A workflow whose first claimed step starts is in progress (by primary key).
START_WORKFLOW_SQL = (
    "UPDATE workflows SET status = 'in_progress' WHERE id = ? AND status = 'pending'"
)

# The runner cycle's probes at once: whether an unapproved proposal expired (through
# idx_action_proposals_expiry), whether a lease ran out (idx_action_proposals_state), whether
# an action was left asked to stop (idx_stop_leftover).
PROBES_SQL = """
SELECT
    EXISTS (SELECT 1 FROM action_proposals INDEXED BY idx_action_proposals_expiry
        WHERE expires_at IS NOT NULL AND approved_at IS NULL AND expires_at <= :now
        AND status IN ('proposed', 'validated')),
    EXISTS (SELECT 1 FROM action_proposals INDEXED BY idx_action_proposals_state
        WHERE status = 'executing' AND status <> 'validated' AND lease_expires_at < :now),
    EXISTS (SELECT id FROM action_proposals INDEXED BY idx_stop_leftover
        WHERE cancel_requested <> 0
        AND (status IN ('proposed', 'validated')
            OR (status = 'failed' AND next_retry_at IS NOT NULL)))
"""

# Schedule a retry of an action this runner holds (by primary key).
RETRY_HELD_SQL = """
UPDATE action_proposals SET status = 'failed', retry_count = retry_count + 1,
    last_error = ?, next_retry_at = ?, claimed_by = NULL, lease_expires_at = NULL
WHERE id = ? AND status = 'executing' AND claimed_by = ?
"""

# Schedule a retry of a failed or running action, whoever holds it (the seed API).
RETRY_ANY_SQL = """
UPDATE action_proposals SET status = 'failed', retry_count = retry_count + 1,
    last_error = ?, next_retry_at = ?, claimed_by = NULL, lease_expires_at = NULL
WHERE id = ? AND status IN ('failed', 'executing')
"""

# Fail an action this runner holds for good (by primary key).
FAIL_HELD_SQL = """
UPDATE action_proposals SET status = 'failed', last_error = ?, next_retry_at = NULL,
    finished_at = ?, claimed_by = NULL, lease_expires_at = NULL
WHERE id = ? AND status = 'executing' AND claimed_by = ?
"""

# Fail a failed or running action for good, whoever holds it (the seed API).
FAIL_ANY_SQL = """
UPDATE action_proposals SET status = 'failed', last_error = ?, next_retry_at = NULL,
    finished_at = ?, claimed_by = NULL, lease_expires_at = NULL
WHERE id = ? AND status IN ('failed', 'executing')
"""

# The workflow step that waits for this one (idx_action_proposals_workflow).
NEXT_STEP_SQL = """
SELECT id, delay_seconds FROM action_proposals
WHERE depends_on_proposal_id = ? AND workflow_id = ? AND status IN ('proposed', 'validated')
"""

# When a step is due (by primary key).
SCHEDULE_STEP_SQL = "UPDATE action_proposals SET scheduled_at = ? WHERE id = ?"

# How many steps of a workflow have not completed (idx_action_proposals_workflow).
UNFINISHED_STEPS_SQL = """
SELECT COUNT(*) FROM action_proposals WHERE workflow_id = ? AND status != 'completed'
"""

# Complete an open workflow (by primary key).
COMPLETE_WORKFLOW_SQL = """
UPDATE workflows SET status = 'completed', finished_at = ?
WHERE id = ? AND status IN ('pending', 'in_progress')
"""
# Close an open attempt's record (by primary key); a closed one is left as it is.
CLOSE_RECORD_SQL = """
UPDATE action_records SET completed_at = ?, success = ?, error_message = ?, result_data = ?
WHERE id = ? AND completed_at IS NULL
"""

# Complete an action this runner holds (by primary key).
COMPLETE_SQL = """
UPDATE action_proposals SET status = 'completed', finished_at = ?, updated_at = ?,
    claimed_by = NULL, lease_expires_at = NULL, last_error = NULL
WHERE id = ? AND status = 'executing' AND claimed_by = ?
"""


def close_record(
    conn: sqlite3.Connection,
    claim: Claim,
    success: bool,
    error: str | None,
    result_data: dict[str, Any] | None,
    now: str | None,
) -> None:
    """Close this claim's attempt; a claim whose attempt was already closed (its lease expired
    and it was recovered, perhaps re-claimed since) is stale and may change nothing."""
    cur = conn.execute(
        CLOSE_RECORD_SQL,
        (
            now,
            int(success),
            error,
            None if result_data is None else dumps(result_data),
            claim.record.id,
        ),
    )
    if cur.rowcount != 1:
        raise InvalidTransitionError(
            f"attempt {claim.record.attempt} of action {claim.proposal.id} was already "
            "recorded (its lease expired); this claim is stale"
        )


def runner_cycle_tx(
    conn: sqlite3.Connection,
    runner_id: str,
    finished: Sequence[tuple[Claim, AttemptResult]],
    limit: int,
    lease_seconds: float,
    now_dt: datetime,
    gate: ApprovalGate | None = None,
    budgets: Budgets | None = None,
) -> tuple[list[Claim], bool, bool]:
    claims = finish_and_claim_tx(
        conn, runner_id, finished, limit, lease_seconds, now_dt, gate, budgets
    )
    now = to_db(now_dt)
    expired, lost, leftover = conn.execute(PROBES_SQL, {"now": now}).fetchone()
    if leftover:
        require_exclusive(conn, "the leftover sweep ends actions of any runner")
        sweep_leftovers(conn, now)
    return claims, bool(expired), bool(lost)


def finish_and_claim_tx(
    conn: sqlite3.Connection,
    runner_id: str,
    finished: Sequence[tuple[Claim, AttemptResult]],
    limit: int,
    lease_seconds: float,
    now_dt: datetime,
    gate: ApprovalGate | None = None,
    budgets: Budgets | None = None,
) -> list[Claim]:
    if finished:
        if getattr(conn, "shared", False) and any(
            c.proposal.workflow_id is not None for c, _ in finished
        ):
            require_exclusive(conn, "a workflow step's end moves its workflow")
        # All at once; only if one turns out stale (no longer ours, e.g. recovered after
        # its lease ran out) or cannot be recorded (e.g. a time out of range), again one by
        # one, each in its own savepoint (see faults.apart). The database's own trouble
        # (locked, full) fails the whole transaction, to be tried again.
        conn.execute("SAVEPOINT finish_all")
        try:
            if all(r.success and c.proposal.workflow_id is None for c, r in finished):
                complete_all_tx(conn, finished, runner_id, to_db(now_dt) or "")
            else:
                for claim, result in finished:
                    finish_tx(conn, claim, runner_id, result, now_dt)
        except Exception as exc:
            if faults.trouble(exc) is not None:
                raise
            require_exclusive(conn, "the batch is recorded one by one")
            conn.execute("ROLLBACK TO finish_all")
            finish_each(conn, runner_id, finished, now_dt)
        conn.execute("RELEASE finish_all")
    return claim_tx(conn, runner_id, limit, lease_seconds, now_dt, None, gate, budgets)


def complete_all_tx(
    conn: sqlite3.Connection,
    finished: Sequence[tuple[Claim, AttemptResult]],
    runner_id: str,
    now: str,
) -> None:
    """Every attempt succeeded and none is a workflow step (the usual batch): what
    ``_finish_tx`` does for each, with each statement run once for all of them."""
    cur = conn.executemany(
        CLOSE_RECORD_SQL,
        [
            (now, 1, None, None if r.result_data is None else dumps(r.result_data), c.record.id)
            for c, r in finished
        ],
    )
    if cur.rowcount != len(finished):
        raise InvalidTransitionError("an attempt of this batch was already recorded")
    cur = conn.executemany(
        COMPLETE_SQL, [(now, now, c.proposal.id, runner_id) for c, _ in finished]
    )
    if cur.rowcount != len(finished):
        raise InvalidTransitionError(f"an action of this batch is no longer held by {runner_id}")
    audit.append_all(
        conn,
        [
            AuditEntry("completed", {"attempt": c.record.attempt}, "runner", c.proposal.id, None)
            for c, _ in finished
        ],
        now,
    )


def claim_tx(
    conn: sqlite3.Connection,
    runner_id: str,
    limit: int,
    lease_seconds: float,
    now_dt: datetime,
    only_id: int | None,
    gate: ApprovalGate | None = None,
    budgets: Budgets | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` ready actions, each with its attempt record (one statement for
    all of them) and its ``execution_started`` event. What the runner's definitions (``gate``)
    or the database's approval mode say needs an approval it lacks never starts; nor does
    an action past its execution budget (``budgets``), counted in this transaction."""
    if limit <= 0:
        return []
    mode = conn.execute(CLAIM_MODE_SQL).fetchone()
    now = to_db(now_dt)
    assert now is not None
    if honour_kill_file(conn, mode and mode[0], now, runner_id):
        return []
    if budgets:
        require_exclusive(conn, "execution budgets count in this transaction")
    if mode is None or mode[0] != "execute":
        return []
    lease = to_db(now_dt + timedelta(seconds=lease_seconds))
    args = {"runner": runner_id, "lease": lease, "now": now, "lim": limit, "only": only_id}
    if not budgets:
        rows = conn.execute(CLAIM_SQL, args).fetchall()
        if not rows:
            return []
        return _start(conn, rows, bool(mode[1]), gate, runner_id, now_dt, now)
    starts = budget.window_starts(conn, budgets, now_dt)
    rows = conn.execute(
        budget.CLAIM_BUDGETED_SQL, {**args, "caps": budget.caps_json(budgets, starts)}
    ).fetchall()
    claims = _start(conn, rows, bool(mode[1]), gate, runner_id, now_dt, now) if rows else []
    budget.note_waits(conn, budgets, starts, claims, now)
    return claims


def _start(
    conn: sqlite3.Connection,
    rows: list[Any],
    approval_mode: bool,
    gate: ApprovalGate | None,
    runner_id: str,
    now_dt: datetime,
    now: str,
) -> list[Claim]:
    """The claimed rows that may start, each with its attempt record and event."""
    try:
        readable = [row_to_proposal(row) for row in rows]
    except Exception:  # a row this version cannot read: fail it, claim the others
        require_exclusive(conn, "an unreadable row is failed for good")
        readable = faults.readable(conn, rows, runner_id, now_dt)
    proposals = screen_claims(conn, readable, approval_mode, gate, runner_id, now_dt)
    if not proposals:
        return []
    opened = open_records(conn, [p.id for p in proposals], now, runner_id)
    claims = []
    started = []
    for p in proposals:
        record_id, attempt = opened[p.id]
        record = opened_record(record_id, p.id or 0, attempt, now_dt)
        started.append(
            AuditEntry(
                "execution_started",
                {
                    "attempt": attempt,
                    "runner": runner_id,
                    "parameters_sha256": parameters_sha256(p.parameters),
                },
                "runner",
                p.id,
                p.workflow_id,
            )
        )
        claims.append(Claim(p, record))
    # In ascending order: cycles side by side (db/shared.py) lock workflow rows in one order.
    for workflow_id in sorted({p.workflow_id for p in proposals if p.workflow_id is not None}):
        conn.execute(START_WORKFLOW_SQL, (workflow_id,))
    audit.append_all(conn, started, now)
    return claims


# Open an attempt record for each action of a chunk (the ids bound as a VALUES list, one row
# per id), numbered after the attempts recorded (idx_action_records_proposal).
OPEN_RECORDS_SQL = """
INSERT INTO action_records (proposal_id, attempt, started_at, runner)
SELECT c.column1, COALESCE((SELECT MAX(r.attempt) FROM action_records r
        WHERE r.proposal_id = c.column1), 0) + 1, ?, ?
FROM (VALUES {ids}) AS c
RETURNING proposal_id, id, attempt
"""
_OPEN_RECORDS_SQL: dict[int, str] = {}
_OPEN_RECORDS_CHUNK = 100


def open_records(
    conn: sqlite3.Connection, proposal_ids: Sequence[int | None], now: str, runner_id: str
) -> dict[int, tuple[int, int]]:
    """Open an attempt record for each of these (distinct) actions, one statement per 100:
    ``{proposal id: (record id, attempt)}``. Attempts are numbered across everything
    recorded (an interrupted attempt counts as one, though it spends no retry)."""
    opened: dict[int, tuple[int, int]] = {}
    for first in range(0, len(proposal_ids), _OPEN_RECORDS_CHUNK):
        chunk = proposal_ids[first : first + _OPEN_RECORDS_CHUNK]
        sql = _OPEN_RECORDS_SQL.get(len(chunk))
        if sql is None:
            sql = _OPEN_RECORDS_SQL[len(chunk)] = OPEN_RECORDS_SQL.format(
                ids=", ".join(["(?)"] * len(chunk))
            )
        for pid, record_id, attempt in conn.execute(sql, (now, runner_id, *chunk)):
            opened[pid] = (record_id, attempt)
    return opened


def finish_tx(
    conn: sqlite3.Connection,
    claim: Claim,
    runner_id: str,
    result: AttemptResult,
    now_dt: datetime,
) -> datetime | None:
    now = to_db(now_dt)
    p = claim.proposal
    close_record(conn, claim, result.success, result.error, result.result_data, now)
    if not result.success:
        return fail_tx(
            conn,
            p.id,
            runner_id,
            result.error or "failed",
            result.retryable,
            result.retry_delay_seconds,
            now_dt,
            "runner",
        )
    cur = conn.execute(COMPLETE_SQL, (now, now, p.id, runner_id))
    if cur.rowcount != 1:
        raise InvalidTransitionError(f"action {p.id} is no longer held by {runner_id}")
    audit.append(
        conn,
        AuditEntry("completed", {"attempt": claim.record.attempt}, "runner", p.id, p.workflow_id),
        now,
    )
    if p.workflow_id is not None:
        advance_workflow(conn, p, now_dt)
    return None


def fail_tx(
    conn: sqlite3.Connection,
    proposal_id: int | None,
    held_by: str | None,
    error: str,
    retryable: bool,
    retry_delay_seconds: float | None,
    now_dt: datetime,
    actor: str,
) -> datetime | None:
    """Count a failure: schedule the retry, or fail the action for good (and its workflow).
    ``held_by`` is the runner that must hold it; None (the seed API) accepts any failed or
    executing action."""
    now = to_db(now_dt)
    p = fetch_proposal(conn, proposal_id or 0)
    guard_args: tuple[Any, ...] = () if held_by is None else (held_by,)
    lost = (
        f"action {p.id} is no longer held by {held_by}"
        if held_by
        else (f"action {p.id} is {p.status.value}; only a failed or running action can be retried")
    )
    if p.cancel_requested and p.status in (ActionStatus.EXECUTING, ActionStatus.FAILED):
        require_exclusive(conn, "a cancel ends the action's workflow too")
        # Asked to stop while it ran (cancel, kill switch, its workflow cancelled): a retry
        # would wait for ever, never claimed. The failure ends it as cancelled.
        end_cancelled(conn, p, held_by, None, {"while": "executing", "error": error}, now, actor)
        return None
    if retryable and retry_delay_seconds is not None and p.retry_count < p.max_retries:
        next_at = now_dt + timedelta(seconds=retry_delay_seconds)
        cur = conn.execute(
            RETRY_ANY_SQL if held_by is None else RETRY_HELD_SQL,
            (error, to_db(next_at), p.id, *guard_args),
        )
        if cur.rowcount != 1:
            raise InvalidTransitionError(lost)
        audit.append(
            conn,
            AuditEntry(
                "retry_scheduled",
                {
                    "retry_count": p.retry_count + 1,
                    "max_retries": p.max_retries,
                    "next_retry_at": to_db(next_at),
                    "error": error,
                },
                actor,
                p.id,
                p.workflow_id,
            ),
            now,
        )
        return next_at
    cur = conn.execute(
        FAIL_ANY_SQL if held_by is None else FAIL_HELD_SQL, (error, now, p.id, *guard_args)
    )
    if cur.rowcount != 1:
        raise InvalidTransitionError(lost)
    event = "retry_exhausted" if retryable else "failed"
    audit.append(
        conn,
        AuditEntry(
            event,
            {
                "retry_count": p.retry_count,
                "max_retries": p.max_retries,
                "error": error,
                "retryable": retryable,
            },
            actor,
            p.id,
            p.workflow_id,
        ),
        now,
    )
    if p.workflow_id is not None:
        fail_workflow(conn, p.workflow_id, p.execution_order, p.id, error, actor, now)
    return None


def advance_workflow(conn: sqlite3.Connection, p: ActionProposal, now_dt: datetime) -> None:
    now = to_db(now_dt)
    nxt = conn.execute(NEXT_STEP_SQL, (p.id, p.workflow_id)).fetchone()
    if nxt is not None:
        if nxt[1]:
            try:
                due = to_db(now_dt + timedelta(seconds=nxt[1]))
            except (TypeError, ValueError, OverflowError) as exc:
                # The next step's fault, not this one's (it ran): that step fails.
                faults.fail_outright(
                    conn,
                    nxt[0],
                    None,
                    f"its delay {nxt[1]!r} cannot be turned into a time: {faults.describe(exc)}",
                    now_dt,
                )
                return
            conn.execute(SCHEDULE_STEP_SQL, (due, nxt[0]))
        return
    remaining = conn.execute(UNFINISHED_STEPS_SQL, (p.workflow_id,)).fetchone()[0]
    if remaining == 0:
        conn.execute(COMPLETE_WORKFLOW_SQL, (now, p.workflow_id))
        audit.append(conn, AuditEntry("workflow_completed", {}, "runner", None, p.workflow_id), now)


def finish_each(
    conn: sqlite3.Connection,
    runner_id: str,
    finished: Sequence[tuple[Claim, AttemptResult]],
    now_dt: datetime,
) -> None:
    """Record finished attempts one by one (a batch that could not be recorded at once):
    a stale claim is skipped, an attempt whose recording raises fails its action."""
    for claim, result in finished:
        pid = claim.proposal.id
        assert pid is not None
        faults.apart(
            conn,
            pid,
            runner_id,
            "the runner could not record this attempt: ",
            now_dt,
            finish_tx,
            claim,
            runner_id,
            result,
            now_dt,
        )


def record_one(
    conn: sqlite3.Connection,
    claim: Claim,
    runner_id: str,
    result: AttemptResult,
    now_dt: datetime,
) -> datetime | None:
    """One attempt's outcome, outside a batch (``execute_proposal``): a stale claim raises
    as it always did; an outcome that cannot be recorded fails its action for good."""
    conn.execute("SAVEPOINT record")
    try:
        next_at = finish_tx(conn, claim, runner_id, result, now_dt)
    except Exception as exc:
        if isinstance(exc, InvalidTransitionError) or faults.trouble(exc) is not None:
            raise
        faults.undo(conn, "record")
        pid = claim.proposal.id
        assert pid is not None
        error = f"the runner could not record this attempt: {faults.describe(exc)}"
        faults.fail_outright(conn, pid, runner_id, error, now_dt)
        return None
    conn.execute("RELEASE record")
    return next_at
