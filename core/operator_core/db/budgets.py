"""Execution budgets at claim time: how many attempts of an action started in its window,
how many more the claim may start, and when a spent budget's next slot opens.

Everything here runs inside the claim's write transaction (BEGIN IMMEDIATE), so two runners
never both see a free slot: the second one counts the first one's attempts. What a spent
budget waits for is kept in ``budget_waits``: the dashboard and the CLI show it, and every
runner wakes when the next slot opens (``leases.NEXT_WAKEUP_SQL``).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from operator_core.clock import from_db, short, to_db
from operator_core.db import audit
from operator_core.db.dialect import Sql, for_postgres
from operator_core.db.records import AuditEntry, Claim
from operator_core.model.states import ActionStatus

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal

Budgets = Mapping[str, tuple[int, float]]
"""Each budgeted action of the runner's definitions: ``{name: (runs, per_seconds)}``."""

# The start of each attempt of one action inside its window, oldest first
# (idx_action_records_budget: only the attempts of budgeted actions are in it).
WINDOW_STARTS_SQL = """
SELECT started_at FROM action_records INDEXED BY idx_action_records_budget
WHERE budget_action = :name AND budget_action IS NOT NULL AND started_at > :since
ORDER BY started_at
"""

# Stamp an attempt of a budgeted action with its name, so that claims count it (by primary
# key).
STAMP_SQL = "UPDATE action_records SET budget_action = ? WHERE id = ?"

# The claim (runner_cycle.CLAIM_SQL) when the runner's actions have budgets: the same ready
# work from the same partial indexes (idx_ready_validated, idx_retry_due), without actions
# whose budget is spent (a cap of 0 in :caps), and at most each action's cap of the rest,
# first due first (a window function over the at most 2 * :lim candidates).
# PostgreSQL has no json_each, and names every subquery in FROM.
CLAIM_BUDGETED_SQL = Sql(
    sqlite="""
UPDATE action_proposals SET status = 'executing', claimed_by = :runner,
    lease_expires_at = :lease, next_retry_at = NULL, finished_at = NULL, updated_at = :now
WHERE id IN (
    SELECT id FROM (
        SELECT id, k, ROW_NUMBER() OVER (PARTITION BY name ORDER BY k, id) AS n,
            (SELECT c.value FROM json_each(:caps) c WHERE c.key = name) AS cap
        FROM (
            SELECT id, k, name FROM (
                SELECT p.id AS id, COALESCE(p.scheduled_at, p.proposed_at) AS k,
                    p.action_name AS name
                FROM action_proposals p INDEXED BY idx_ready_validated
                WHERE p.status = 'validated'
                  AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
                  AND COALESCE(p.scheduled_at, p.proposed_at) <= :now
                  AND p.cancel_requested = 0
                  AND (:only IS NULL OR p.id = :only)
                  AND (p.depends_on_proposal_id IS NULL OR EXISTS (
                      SELECT 1 FROM action_proposals d
                      WHERE d.id = p.depends_on_proposal_id AND d.status = 'completed'))
                  AND NOT EXISTS (SELECT 1 FROM json_each(:caps) c
                      WHERE c.key = p.action_name AND c.value <= 0)
                ORDER BY COALESCE(p.scheduled_at, p.proposed_at), p.id
                LIMIT :lim)
            UNION ALL
            SELECT id, k, name FROM (
                SELECT p.id AS id, p.next_retry_at AS k, p.action_name AS name
                FROM action_proposals p INDEXED BY idx_retry_due
                WHERE p.status = 'failed' AND p.next_retry_at IS NOT NULL
                  AND p.next_retry_at <= :now
                  AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
                  AND p.cancel_requested = 0
                  AND (:only IS NULL OR p.id = :only)
                  AND NOT EXISTS (SELECT 1 FROM json_each(:caps) c
                      WHERE c.key = p.action_name AND c.value <= 0)
                ORDER BY p.next_retry_at, p.id
                LIMIT :lim)
        )
    )
    WHERE cap IS NULL OR n <= cap
    ORDER BY k, id
    LIMIT :lim)
RETURNING id, ticket_id, action_name, action_type, parameters, reason, status, proposed_at,
    proposed_by, validated_at, cancelled_at, cancel_reason, requires_approval, approved_at,
    approved_by, rejected_at, rejected_by, rejection_reason, expires_at, workflow_id,
    execution_order, depends_on_proposal_id, delay_seconds, scheduled_at, retry_count,
    max_retries, next_retry_at, last_error, claimed_by, lease_expires_at, cancel_requested
""",
    postgres=for_postgres("""
UPDATE action_proposals SET status = 'executing', claimed_by = :runner,
    lease_expires_at = :lease, next_retry_at = NULL, finished_at = NULL, updated_at = :now
WHERE id IN (
    SELECT id FROM (
        SELECT id, k, ROW_NUMBER() OVER (PARTITION BY name ORDER BY k, id) AS n,
            (SELECT CAST(c.value AS INTEGER) FROM jsonb_each_text(CAST(:caps AS jsonb)) c
                WHERE c.key = name) AS cap
        FROM (
            SELECT id, k, name FROM (
                SELECT p.id AS id, COALESCE(p.scheduled_at, p.proposed_at) AS k,
                    p.action_name AS name
                FROM action_proposals p
                WHERE p.status = 'validated'
                  AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
                  AND COALESCE(p.scheduled_at, p.proposed_at) <= :now
                  AND p.cancel_requested = 0
                  AND (CAST(:only AS BIGINT) IS NULL OR p.id = :only)
                  AND (p.depends_on_proposal_id IS NULL OR EXISTS (
                      SELECT 1 FROM action_proposals d
                      WHERE d.id = p.depends_on_proposal_id AND d.status = 'completed'))
                  AND NOT EXISTS (SELECT 1 FROM jsonb_each_text(CAST(:caps AS jsonb)) c
                      WHERE c.key = p.action_name AND CAST(c.value AS INTEGER) <= 0)
                ORDER BY COALESCE(p.scheduled_at, p.proposed_at), p.id
                LIMIT :lim) AS ready
            UNION ALL
            SELECT id, k, name FROM (
                SELECT p.id AS id, p.next_retry_at AS k, p.action_name AS name
                FROM action_proposals p
                WHERE p.status = 'failed' AND p.next_retry_at IS NOT NULL
                  AND p.next_retry_at <= :now
                  AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
                  AND p.cancel_requested = 0
                  AND (CAST(:only AS BIGINT) IS NULL OR p.id = :only)
                  AND NOT EXISTS (SELECT 1 FROM jsonb_each_text(CAST(:caps AS jsonb)) c
                      WHERE c.key = p.action_name AND CAST(c.value AS INTEGER) <= 0)
                ORDER BY p.next_retry_at, p.id
                LIMIT :lim) AS retries
        ) AS due
    ) AS ranked
    WHERE cap IS NULL OR n <= cap
    ORDER BY k, id
    LIMIT :lim)
RETURNING id, ticket_id, action_name, action_type, parameters, reason, status, proposed_at,
    proposed_by, validated_at, cancelled_at, cancel_reason, requires_approval, approved_at,
    approved_by, rejected_at, rejected_by, rejection_reason, expires_at, workflow_id,
    execution_order, depends_on_proposal_id, delay_seconds, scheduled_at, retry_count,
    max_retries, next_retry_at, last_error, claimed_by, lease_expires_at, cancel_requested
"""),
)

# Every spent budget's wait, as the last claim noted it (a small table: one row per action).
WAITS_SQL = "SELECT action_name, runs, per_seconds, used, next_slot_at FROM budget_waits"

# A spent budget's next slot, noted by the claim that found it spent (by primary key).
NOTE_WAIT_SQL = """
INSERT INTO budget_waits (action_name, runs, per_seconds, used, next_slot_at, noted_at)
VALUES (:name, :runs, :per, :used, :next, :now)
ON CONFLICT (action_name) DO UPDATE SET runs = excluded.runs,
    per_seconds = excluded.per_seconds, used = excluded.used,
    next_slot_at = excluded.next_slot_at, noted_at = excluded.noted_at
"""

# A budget with a free slot again waits for nothing (by primary key).
CLEAR_WAIT_SQL = "DELETE FROM budget_waits WHERE action_name = ?"


@dataclass(frozen=True)
class BudgetWait:
    """A spent execution budget: ``used`` of ``runs`` in ``per_seconds``; the next
    execution of the action may start at ``next_slot_at``."""

    action_name: str
    runs: int
    per_seconds: float
    used: int
    next_slot_at: datetime

    def describe(self, now: datetime) -> str:
        """``budget: next slot in 12m``, as the dashboard and the CLI say it."""
        left = max((self.next_slot_at - now).total_seconds(), 0.0)
        return f"budget: next slot in {short(left)}"


def window_starts(
    conn: sqlite3.Connection, budgets: Budgets, now_dt: datetime
) -> dict[str, list[str]]:
    """Each budgeted action's attempt starts inside its window (oldest first)."""
    out = {}
    for name, (_, per) in budgets.items():
        since = to_db(now_dt - timedelta(seconds=per))
        out[name] = [r[0] for r in conn.execute(WINDOW_STARTS_SQL, {"since": since, "name": name})]
    return out


def caps_json(budgets: Budgets, starts: Mapping[str, list[str]]) -> str:
    """How many more attempts of each budgeted action the claim may start, as the claim's
    ``:caps`` parameter (a JSON object)."""
    return json.dumps(
        {name: max(runs - len(starts[name]), 0) for name, (runs, _) in budgets.items()}
    )


def next_slot(starts: list[str], runs: int, per: float) -> datetime | None:
    """When a budget of ``runs`` per ``per`` seconds has a slot again, given the starts in
    its window (oldest first); None if it has one now."""
    if len(starts) < runs:
        return None
    oldest_to_leave = from_db(starts[len(starts) - runs])
    assert oldest_to_leave is not None
    return oldest_to_leave + timedelta(seconds=per)


def note_waits(
    conn: sqlite3.Connection,
    budgets: Budgets,
    starts: Mapping[str, list[str]],
    claims: Sequence[Claim],
    now: str,
) -> None:
    """After the claim: stamp the attempts it opened of budgeted actions; note each budget
    now spent (with those attempts) and when its next slot opens, clear those with a slot
    free. Written only when that changes; a budget that becomes spent is audited once
    (``budget_spent``)."""
    stamps = [
        (c.proposal.action_name, c.record.id) for c in claims if c.proposal.action_name in budgets
    ]
    if stamps:
        conn.executemany(STAMP_SQL, stamps)
    started = Counter(name for name, _ in stamps)
    noted = {r[0]: tuple(r[1:]) for r in conn.execute(WAITS_SQL)}
    events = []
    for name, (runs, per) in budgets.items():
        window = starts[name] + [now] * started[name]
        slot = next_slot(window, runs, per)
        if slot is None:
            if name in noted:
                conn.execute(CLEAR_WAIT_SQL, (name,))
            continue
        row = (runs, per, len(window), to_db(slot))
        if noted.get(name) == row:
            continue
        conn.execute(
            NOTE_WAIT_SQL,
            {
                "name": name,
                "runs": runs,
                "per": per,
                "used": len(window),
                "next": row[3],
                "now": now,
            },
        )
        old = noted.get(name)
        if old is None or old[3] is None or old[3] <= now:
            events.append(
                AuditEntry(
                    "budget_spent",
                    {"action": name, "runs": runs, "per_seconds": per, "next_slot_at": row[3]},
                    "runner",
                )
            )
    if events:
        audit.append_all(conn, events, now)


def waiting_on(p: ActionProposal, spent: Mapping[str, BudgetWait]) -> BudgetWait | None:
    """The spent budget this action waits for, if it is otherwise ready to run (approved
    or needing no approval, not yet running or done)."""
    wait = spent.get(p.action_name)
    if wait is None or p.cancel_requested:
        return None
    ready = p.status == ActionStatus.VALIDATED or (
        p.status == ActionStatus.FAILED and p.next_retry_at is not None
    )
    cleared = not p.requires_approval or p.approved_at is not None
    return wait if ready and cleared else None


def waits(conn: sqlite3.Connection, now: datetime) -> dict[str, BudgetWait]:
    """The budgets spent at ``now``, by action name (a wait whose slot opened is over)."""
    out = {}
    for name, runs, per, used, text in conn.execute(WAITS_SQL):
        at = from_db(text)
        if at is not None and at > now:
            out[name] = BudgetWait(name, runs, per, used, at)
    return out
