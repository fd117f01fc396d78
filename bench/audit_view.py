"""The Audit view's first page on a database of 1,000,000 audit events.

As ``bench history_view``: the real dashboard in a pseudo-terminal (``Dashboard``: a fresh
process, 120x36, its output read as a terminal would); once it has painted, the bench types
``L`` and times from that write to the arrival of the frame that shows the newest events
(the view's subtitle, ``following``, is drawn only once the page is on screen). Each run is
a fresh dashboard on a fresh copy of the database.

The database is made for this bench alone (cached): the real schema (``ActionDB`` opens and
migrates it), 100,000 finished actions (``bench.history_view``'s), then 1,000,000 audit
events on them, chained by the real hash function, inserted in one transaction.
"""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import DB_TIME_FORMAT, Figure
from bench.history_view import _fill as _fill_actions
from bench.history_view import cached_db, time_key

EVENTS = 1_000_000
ACTIONS = 100_000
FIRST_PAGE_SHOWN = "following"
"""What the frame with the first page shows (the subtitle of ``AuditTable``)."""

TYPES = ["proposed", "approved", "execution_started", "completed", "retry_scheduled", "failed"]
ACTORS = ["agent", "runner", "alice@ops-1", "bob@ops-2"]


def _fill_events(conn: sqlite3.Connection, n: int, actions: int) -> None:
    """``n`` events, chained to those already there (if any)."""
    from operator_core.anchor.chain import GENESIS_HASH, event_hash
    from operator_core.db.audit import TAIL_SQL

    rng = random.Random(13)
    now = datetime.now(UTC)
    span = timedelta(days=30)
    first, prev = conn.execute(TAIL_SQL).fetchone() or (0, GENESIS_HASH)
    rows: list[tuple[Any, ...]] = []
    for i in range(1, n + 1):
        at = (now - span + span * (i / n)).strftime(DB_TIME_FORMAT)
        pid = 1 + (i * actions) // (n + 1)
        kind = rng.choice(TYPES)
        data = json.dumps({"attempt": 1} if kind == "execution_started" else {}, sort_keys=True)
        actor = rng.choice(ACTORS)
        digest = event_hash(prev, pid, None, kind, data, actor, at)
        rows.append((first + i, pid, None, kind, data, actor, at, prev, digest))
        prev = digest
    conn.executemany(
        "INSERT INTO action_audit_log (id, proposal_id, workflow_id, event_type, event_data,"
        " actor, timestamp, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def events_db(n: int = EVENTS) -> Path:
    """The cached database of ``n`` audit events (made on first use)."""

    def fill(conn: sqlite3.Connection) -> None:
        actions = min(ACTIONS, n)
        _fill_actions(conn, actions)
        _fill_events(conn, n, actions)

    return cached_db("audit", n, fill)


def bench(runs: int, quick: bool, log: Any = print) -> list[Figure]:
    n = 20_000 if quick else EVENTS
    figure = Figure(
        f"audit view, {n:,} audit events",
        "L → newest events on screen",
        "ms",
        target="≤ 250 ms",
        meets=lambda v: v <= 250,
    )
    time_key(figure, events_db(n), b"L", FIRST_PAGE_SHOWN, runs, log)
    return [figure]
