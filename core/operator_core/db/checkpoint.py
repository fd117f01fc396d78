"""WAL checkpoints off the hot path.

SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold: that commit
copies the WAL back into the database file and syncs it, a few milliseconds that land on
whichever proposal or runner batch happened to commit then (a large share of all commit
time: see docs/performance.md). Our connection turns the automatic checkpoint up to a safety
net and asks this thread for a PASSIVE checkpoint every ``every`` commits instead. The
thread has its own connection; SQLite releases the GIL while it copies and syncs, and a
passive checkpoint never blocks a reader or a writer, so the committer goes on at once.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

# Inline checkpoints still happen if the WAL reaches this many pages (the thread fell behind,
# or another program writes the database).
SAFETY_NET_PAGES = 4000


class Checkpointer:
    """Checkpoints one database in a background thread, on request."""

    def __init__(self, db_path: Path, every: int = 64) -> None:
        self._path = db_path
        self._every = every
        self._commits = 0
        self._wanted = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    def committed(self) -> None:
        """Count a write commit; every ``every`` commits, ask for a checkpoint."""
        self._commits += 1
        if self._commits < self._every:
            return
        self._commits = 0
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="operator-checkpoint", daemon=True
            )
            self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._closing:
                    return
                # PASSIVE: copies what no reader still needs and never waits for a lock; a
                # busy database just means trying again at the next request.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
        except sqlite3.Error:
            return  # the inline safety net takes over
        finally:
            if conn is not None:
                conn.close()

    def close(self) -> None:
        if self._thread is None:
            return
        self._closing = True
        self._wanted.set()
        self._thread.join(timeout=5)
        self._thread = None
        self._closing = False
