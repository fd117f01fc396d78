"""The work in hand, for the dashboard's Running pane: what executes now (which runner holds
it, since when, its lease) and what is approved, due and waiting for a runner. Reads only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from operator_core.clock import from_db, to_db
from operator_core.db.budgets import BudgetWait, waiting_on, waits
from operator_core.db.rows import row_to_proposal

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal

# Executing actions, each with the start of its current attempt, oldest claim first
# (idx_action_proposals_state, then idx_action_records_proposal per action).
RUNNING_SQL = """
SELECT p.*, (SELECT MAX(r.started_at) FROM action_records r WHERE r.proposal_id = p.id)
    AS attempt_started
FROM action_proposals p
WHERE p.status = 'executing' AND p.status <> 'validated'
ORDER BY p.id LIMIT :limit
"""

# Approved (or needing no approval) validated actions due by :now whose previous step, if
# any, completed: what the next claim takes, in its order (idx_ready_validated).
QUEUED_READY_SQL = """
SELECT p.* FROM action_proposals p INDEXED BY idx_ready_validated
WHERE p.status = 'validated'
    AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
    AND COALESCE(p.scheduled_at, p.proposed_at) <= :now
    AND p.cancel_requested = 0
    AND (p.depends_on_proposal_id IS NULL OR EXISTS (
        SELECT 1 FROM action_proposals d
        WHERE d.id = p.depends_on_proposal_id AND d.status = 'completed'))
ORDER BY COALESCE(p.scheduled_at, p.proposed_at), p.id
LIMIT :limit
"""

# Retries due by :now, soonest first (idx_retry_due).
QUEUED_RETRY_SQL = """
SELECT p.* FROM action_proposals p INDEXED BY idx_retry_due
WHERE p.status = 'failed' AND p.next_retry_at IS NOT NULL AND p.next_retry_at <= :now
    AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
    AND p.cancel_requested = 0
ORDER BY p.next_retry_at, p.id
LIMIT :limit
"""


@dataclass(frozen=True)
class InHand:
    """One action of the Running pane: executing (``attempt_started`` set) or queued
    (``waiting_since``: when it became due or was approved, whichever came last)."""

    proposal: ActionProposal
    attempt_started: datetime | None = None
    waiting_since: datetime | None = None
    budget: BudgetWait | None = None
    """The spent execution budget a queued action waits for (no runner will take it yet)."""

    @property
    def executing(self) -> bool:
        return self.waiting_since is None


def running(conn: sqlite3.Connection, limit: int, views: bool = False) -> list[InHand]:
    rows = conn.execute(RUNNING_SQL, {"limit": limit}).fetchall()
    return [InHand(row_to_proposal(r, views), from_db(r["attempt_started"])) for r in rows]


def queued(
    conn: sqlite3.Connection, now: datetime, limit: int, views: bool = False
) -> list[InHand]:
    """Due work no runner has claimed yet, the order the claim takes it (by due time); an
    action whose execution budget is spent says when its next slot opens."""
    params = {"now": to_db(now), "limit": limit}
    spent = waits(conn, now)
    out = []
    for sql in (QUEUED_READY_SQL, QUEUED_RETRY_SQL):
        for r in conn.execute(sql, params).fetchall():
            p = row_to_proposal(r, views)
            due = p.next_retry_at or p.scheduled_at or p.proposed_at
            since = max(t for t in (due, p.approved_at) if t is not None)
            out.append(InHand(p, waiting_since=since, budget=waiting_on(p, spent)))
    out.sort(key=lambda h: (h.waiting_since, h.proposal.id or 0))
    return out[:limit]
