"""The peer: Huey's SqliteHuey with no-op tasks, and its consumer as a separate process.

The bench process (which enqueues) and the consumer process (``python -m
bench.huey_consumer``, which runs) share this one definition; both call ``configure`` with
the database file and the SQLite ``synchronous`` level. Huey's own ``fsync`` switch only
knows FULL or OFF, so the storage sets the pragma on its connection instead; the journal is
WAL, as ours.
"""

from __future__ import annotations

import sqlite3
import threading
import time

from huey import SqliteHuey
from huey.storage import SqliteStorage


class SyncSqliteStorage(SqliteStorage):
    """SqliteStorage at a chosen ``PRAGMA synchronous`` (NORMAL or FULL)."""

    synchronous = "NORMAL"

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn


huey = SqliteHuey("bench", filename=":memory:", storage_class=SyncSqliteStorage)


def configure(path: str, synchronous: str) -> None:
    """Point the Huey instance at ``path`` with ``PRAGMA synchronous = synchronous``."""
    SyncSqliteStorage.synchronous = synchronous.upper()
    huey.storage.close()
    huey.storage = SyncSqliteStorage("bench", filename=path)


_lock = threading.Lock()
_ran = 0
_first_start: float | None = None
_last_end = 0.0
_done = threading.Event()
target = 0


@huey.task()
def noop() -> None:
    """Does nothing; the consumer process counts it (first start, last end)."""
    global _ran, _first_start, _last_end
    start = time.time()
    with _lock:
        if _first_start is None:
            _first_start = start
        _ran += 1
        _last_end = time.time()
        if target and _ran >= target:
            _done.set()


@huey.task()
def stamp(sent: float) -> float:
    """Returns when it started, for enqueue→start and eta→start latency."""
    return time.time()


def wait_drained() -> dict[str, float | int | None]:
    """Block until ``target`` tasks ran in this process; what the drain looked like."""
    _done.wait()
    return {"ran": _ran, "first_start": _first_start, "last_end": _last_end}
