"""Runners' heartbeats (schema v11): one row per runner process, beaten every few seconds and
stamped when it stops, so the dashboard can say whether any runner is up.

A runner whose last beat is older than ``ALIVE_WITHIN`` seconds is taken for gone (a crash, a
machine lost): its row stays, with no ``stopped_at``, and the next runners prune it after a
day.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from operator_core.clock import from_db, to_db

HEARTBEAT_SECONDS = 10.0
"""Seconds between a runner's beats."""
ALIVE_WITHIN = 3 * HEARTBEAT_SECONDS
"""A runner that beat within this many seconds is up (two beats may be late: a busy disk)."""
PRUNE_AFTER = timedelta(days=1)

# A runner starts or beats (by primary key).
BEAT_SQL = """
INSERT INTO runners (id, host, pid, started_at, beat_at) VALUES (:id, :host, :pid, :now, :now)
ON CONFLICT (id) DO UPDATE SET beat_at = :now, stopped_at = NULL
"""

# A runner stops (by primary key).
STOP_SQL = "UPDATE runners SET beat_at = :now, stopped_at = :now WHERE id = :id"

# Rows of runners stopped or silent for a day (a scan of the small table: one row a process).
PRUNE_SQL = "DELETE FROM runners WHERE beat_at < :before"

# Runners not stopped that beat since :since, oldest first (idx_runners_live).
LIVE_SQL = """
SELECT id, host, pid, started_at, beat_at FROM runners INDEXED BY idx_runners_live
WHERE stopped_at IS NULL AND beat_at >= :since
ORDER BY started_at, id
"""


@dataclass(frozen=True)
class RunnerBeat:
    id: str
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime


def beat(conn: sqlite3.Connection, runner_id: str, host: str, pid: int, now: datetime) -> None:
    """Record that ``runner_id`` is up (its row made on its first beat)."""
    conn.execute(BEAT_SQL, {"id": runner_id, "host": host, "pid": pid, "now": to_db(now)})


def started(conn: sqlite3.Connection, runner_id: str, host: str, pid: int, now: datetime) -> None:
    """A runner's first beat; rows left a day ago by others go."""
    conn.execute(PRUNE_SQL, {"before": to_db(now - PRUNE_AFTER)})
    beat(conn, runner_id, host, pid, now)


def stopped(conn: sqlite3.Connection, runner_id: str, now: datetime) -> None:
    conn.execute(STOP_SQL, {"id": runner_id, "now": to_db(now)})


def live_runners(conn: sqlite3.Connection, now: datetime) -> list[RunnerBeat]:
    """The runners up at ``now``: not stopped, and beat within ``ALIVE_WITHIN`` seconds."""
    since = to_db(now - timedelta(seconds=ALIVE_WITHIN))
    out = []
    for rid, host, pid, started_at, beat_at in conn.execute(LIVE_SQL, {"since": since}):
        start, last = from_db(started_at), from_db(beat_at)
        assert start is not None and last is not None
        out.append(RunnerBeat(rid, host, pid, start, last))
    return out
