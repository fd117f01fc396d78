"""The History view's first page on a database of 1,000,000 finished actions.

The real dashboard runs in a pseudo-terminal as in ``bench dashboard`` (``Dashboard``: a
fresh process, 120x36, its output read as a terminal would); once it has painted, the bench
types ``H`` and times from that write to the arrival of the frame that shows the first page
(the view's subtitle, ``100 shown``, is drawn only once the page is on screen). Each run is
a fresh dashboard on a fresh copy of the database.

The database is made for this bench alone (cached): the real schema (``ActionDB`` opens and
migrates it), then 1,000,000 finished actions over 30 days (completed, failed, cancelled and
rejected, most with one attempt record), inserted in one transaction.
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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import DB_TIME_FORMAT, Figure, compile_bytecode, settle
from bench.dashboard import Dashboard, _kill_leftovers
from bench.history import ACTIONS, AGENTS, CACHE

FINISHED = 1_000_000
FIRST_PAGE_SHOWN = "100 shown"
"""What the frame with the first page shows (the subtitle of ``HistoryTable``)."""


async def _create_schema(path: Path) -> None:
    from operator_core.db.actions import ActionDB

    async with ActionDB(path) as db:
        await db.data_version()


def _fill(conn: sqlite3.Connection, n: int) -> None:
    rng = random.Random(11)
    now = datetime.now(UTC)
    span = timedelta(days=30)
    proposals: list[tuple[Any, ...]] = []
    records: list[tuple[Any, ...]] = []
    for pid in range(1, n + 1):
        proposed = now - span + span * (pid / n)
        finished = proposed + timedelta(seconds=rng.uniform(1, 120))
        name, make = rng.choice(ACTIONS)
        roll = rng.random()
        status, error, cancel, rejected = "completed", None, None, None
        if roll < 0.04:
            status, error = "failed", "exit code 1: store did not come back"
        elif roll < 0.08:
            status, cancel = "cancelled", "cancelled by operator"
        elif roll < 0.10:
            status, cancel, rejected = "cancelled", "rejected", "not during the freeze"
        p, f = proposed.strftime(DB_TIME_FORMAT), finished.strftime(DB_TIME_FORMAT)
        proposals.append(
            (
                pid,
                name,
                json.dumps(make(rng), sort_keys=True),
                "routine",
                status,
                p,
                rng.choice(AGENTS),
                error,
                cancel,
                rejected,
                f if rejected else None,
                f,
            )
        )
        if cancel is None:
            records.append((pid, p, f, int(status == "completed"), error))
    conn.executemany(
        "INSERT INTO action_proposals (id, action_name, parameters, reason, status, proposed_at,"
        " proposed_by, last_error, cancel_reason, rejection_reason, rejected_at, finished_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        proposals,
    )
    conn.executemany(
        "INSERT INTO action_records (proposal_id, started_at, completed_at, success, "
        "error_message) VALUES (?, ?, ?, ?, ?)",
        records,
    )


def cached_db(name: str, n: int, fill: Callable[[sqlite3.Connection], None]) -> Path:
    """The cached database ``CACHE/NAME-sVERSION-N.db``: made once by ``fill`` inside one
    transaction on the real schema, then reused by every run."""
    from operator_core.db.schema import LATEST_VERSION

    CACHE.mkdir(mode=0o700, exist_ok=True)
    cached = CACHE / f"{name}-s{LATEST_VERSION}-{n}.db"
    if not cached.exists():
        partial = cached.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        asyncio.run(_create_schema(partial))
        conn = sqlite3.connect(partial, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            fill(conn)
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        partial.rename(cached)
    return cached


def finished_db(n: int = FINISHED) -> Path:
    """The cached database of ``n`` finished actions (made on first use)."""
    return cached_db("finished", n, lambda conn: _fill(conn, n))


def time_key(figure: Figure, cached: Path, key: bytes, shown: str, runs: int, log: Any) -> None:
    """Type ``key`` into a fresh dashboard on a fresh copy of ``cached`` once it has
    painted; append the time until a frame holding ``shown`` arrives to ``figure.ours``."""
    compile_bytecode()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-view-") as tmp:
            for i in range(runs):
                db = Path(tmp) / f"run{i}.db"
                shutil.copyfile(cached, db)
                settle()
                dash = Dashboard.launch("operator", db)
                dash.wait_event("paint", 120)
                time.sleep(1.0)  # the subject loaded, the first refreshes done
                pressed = time.time()
                os.write(dash.master, key)
                arrived = dash.received(shown, timeout=30)
                figure.ours.append((arrived - pressed) * 1000.0)
                dash.quit()
                log(f"  run {i + 1}/{runs}: first page {figure.ours[-1]:.0f} ms")
    finally:
        _kill_leftovers()


def bench(runs: int, quick: bool, log: Any = print) -> list[Figure]:
    n = 20_000 if quick else FINISHED
    figure = Figure(
        f"history view, {n:,} finished actions",
        "H → first page on screen",
        "ms",
        target="≤ 250 ms",
        meets=lambda v: v <= 250,
    )
    time_key(figure, finished_db(n), b"H", FIRST_PAGE_SHOWN, runs, log)
    return [figure]
