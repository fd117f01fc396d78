"""Finished work (completed, failed for good, rejected, cancelled, expired), newest first, a
page at a time: the dashboard's History view. Reads only.

Pages follow each other by keyset, (finished_at, id) below the last row shown, through
idx_history (schema v11): a page costs the same at the top of 100 or 1,000,000 finished
actions, and no read ever skips rows by counting them. A search walks the same index and
tests each row, at most ``SEARCH_BUDGET`` rows per page asked for, and says where it stopped,
so a rare word never turns one keystroke into a scan of the whole history.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from operator_core.clock import from_db
from operator_core.db.rows import row_to_proposal

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal

PAGE = 100
SEARCH_CHUNK = 5_000
SEARCH_BUDGET = 50_000
"""Rows a search tests for one page at most (about 50 ms on the development machine)."""

TOP: tuple[str, int] = ("~", 0)
"""A key above every finished row (``~`` sorts after any stored time)."""

# One page of finished actions below a key, newest first (idx_history).
PAGE_SQL = """
SELECT p.*, (SELECT COUNT(*) FROM action_records r WHERE r.proposal_id = p.id) AS attempts
FROM action_proposals p INDEXED BY idx_history
WHERE p.finished_at IS NOT NULL AND (p.finished_at, p.id) < (:at, :id)
ORDER BY p.finished_at DESC, p.id DESC
LIMIT :limit
"""

# The next rows below a key, each with whether it holds :needle (lower case) in its action,
# parameters, proposer, reason, error, or why it was cancelled or rejected (idx_history).
SEARCH_SQL = """
SELECT p.finished_at, p.id, instr(lower(
    p.action_name || ' ' || p.parameters || ' ' || p.proposed_by || ' ' || p.reason || ' '
    || COALESCE(p.last_error, '') || ' ' || COALESCE(p.cancel_reason, '') || ' '
    || COALESCE(p.rejection_reason, '')), :needle) > 0
FROM action_proposals p INDEXED BY idx_history
WHERE p.finished_at IS NOT NULL AND (p.finished_at, p.id) < (:at, :id)
ORDER BY p.finished_at DESC, p.id DESC
LIMIT :limit
"""

# One finished action found by a search, as PAGE_SQL reads it (by primary key).
ONE_SQL = """
SELECT p.*, (SELECT COUNT(*) FROM action_records r WHERE r.proposal_id = p.id) AS attempts
FROM action_proposals p WHERE p.id = :id
"""


@dataclass(frozen=True)
class Finished:
    proposal: ActionProposal
    attempts: int
    """Attempts recorded (0: it never ran)."""
    finished_at: datetime | None


def _finished(r: sqlite3.Row, views: bool) -> Finished:
    return Finished(row_to_proposal(r, views), r["attempts"], from_db(r["finished_at"]))


@dataclass(frozen=True)
class HistoryPage:
    items: list[Finished]
    next: tuple[str, int] | None
    """The key to read the next page below (None: the history ends here)."""
    searched: int = 0
    """Rows a search tested for this page."""


def page(
    conn: sqlite3.Connection,
    below: tuple[str, int] = TOP,
    limit: int = PAGE,
    needle: str = "",
    views: bool = False,
) -> HistoryPage:
    """The finished actions below the key ``below`` (``TOP``: the newest), or with a
    ``needle`` only those that hold it, newest first."""
    if needle:
        return _search(conn, below, limit, needle.lower(), views)
    at, pid = below
    rows = conn.execute(PAGE_SQL, {"at": at, "id": pid, "limit": limit}).fetchall()
    items = [_finished(r, views) for r in rows]
    nxt = (rows[-1]["finished_at"], rows[-1]["id"]) if len(rows) == limit else None
    return HistoryPage(items, nxt)


def _search(
    conn: sqlite3.Connection, below: tuple[str, int], limit: int, needle: str, views: bool
) -> HistoryPage:
    hits: list[int] = []
    key: tuple[str, int] | None = below
    searched = 0
    while key is not None and len(hits) < limit and searched < SEARCH_BUDGET:
        params = {"at": key[0], "id": key[1], "needle": needle, "limit": SEARCH_CHUNK}
        rows = conn.execute(SEARCH_SQL, params).fetchall()
        key = None if len(rows) < SEARCH_CHUNK else key
        for at, pid, hit in rows:
            searched += 1
            if hit:
                hits.append(pid)
                if len(hits) == limit:
                    key = (at, pid)
                    break
        else:
            if key is not None:
                key = (rows[-1][0], rows[-1][1])
    items = []
    for pid in hits:
        r = conn.execute(ONE_SQL, {"id": pid}).fetchone()
        items.append(_finished(r, views))
    return HistoryPage(items, key, searched)
