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

import asyncio
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import DB_TIME_FORMAT, Figure, compile_bytecode, settle
from bench.dashboard import Dashboard, _kill_leftovers
from bench.history import CACHE
from bench.history_view import _create_schema
from bench.history_view import _fill as _fill_actions

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
    from operator_core.db.schema import LATEST_VERSION

    CACHE.mkdir(mode=0o700, exist_ok=True)
    cached = CACHE / f"audit-s{LATEST_VERSION}-{n}.db"
    if not cached.exists():
        partial = cached.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        asyncio.run(_create_schema(partial))
        conn = sqlite3.connect(partial, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            actions = min(ACTIONS, n)
            _fill_actions(conn, actions)
            _fill_events(conn, n, actions)
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        partial.rename(cached)
    return cached


def bench(runs: int, quick: bool, log: Any = print) -> list[Figure]:
    n = 20_000 if quick else EVENTS
    figure = Figure(
        f"audit view, {n:,} audit events",
        "L → newest events on screen",
        "ms",
        target="≤ 250 ms",
        meets=lambda v: v <= 250,
    )
    compile_bytecode()
    cached = events_db(n)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-audit-view-") as tmp:
            for i in range(runs):
                db = Path(tmp) / f"run{i}.db"
                shutil.copyfile(cached, db)
                settle()
                dash = Dashboard.launch("operator", db)
                dash.wait_event("paint", 120)
                time.sleep(1.0)  # the subject loaded, the first refreshes done
                pressed = time.time()
                os.write(dash.master, b"L")
                shown = dash.received(FIRST_PAGE_SHOWN, timeout=30)
                figure.ours.append((shown - pressed) * 1000.0)
                dash.quit()
                log(f"  run {i + 1}/{runs}: first page {figure.ours[-1]:.0f} ms")
    finally:
        _kill_leftovers()
    return [figure]
