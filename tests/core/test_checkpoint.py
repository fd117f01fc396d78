"""Background WAL checkpoints: commits never wait for one, and the WAL still gets copied back
into the database file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from operator_core.db.actions import ActionDB
from operator_core.model.types import Ticket


async def test_commits_are_checkpointed_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    async with ActionDB(path) as db:
        for i in range(200):
            await db.create_ticket(Ticket(title=f"t{i}", summary="s"))
        checkpointer = db._checkpointer
        assert checkpointer._thread is not None and checkpointer._thread.is_alive()
        # A reader holding an old snapshot does not hold up a commit (PASSIVE never waits).
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        assert reader.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 200
        for i in range(100):
            await db.create_ticket(Ticket(title=f"u{i}", summary="s"))
        reader.execute("COMMIT")
        reader.close()
    assert checkpointer.checkpoints >= 3
    assert not any(t.name == "operator-checkpoint" for t in threading.enumerate())
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 300
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


async def test_the_automatic_checkpoint_remains_as_a_safety_net(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    async with ActionDB(path) as db:
        pages = await db.read(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    assert pages >= 1000
