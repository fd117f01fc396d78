"""Schema, migrations and connection set-up (SPEC 4)."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from operator_core.clock import to_db
from operator_core.db.actions import ActionDB
from operator_core.db.schema import LATEST_VERSION
from operator_core.errors import DatabaseError, SchemaTooNewError
from operator_core.model.types import ActionStatus, Ticket

# The seeds' CREATE TABLE statements (002 + 000), verbatim in substance.
SEED_SCHEMA = """
CREATE TABLE IF NOT EXISTS action_proposals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER,
    action_name TEXT NOT NULL,
    action_type TEXT NOT NULL DEFAULT 'subject',
    parameters TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'proposed',
    proposed_at TEXT NOT NULL,
    proposed_by TEXT NOT NULL DEFAULT 'agent',
    validated_at TEXT,
    cancelled_at TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (ticket_id) REFERENCES tickets(id)
);
CREATE TABLE IF NOT EXISTS action_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal_id INTEGER NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    success INTEGER,
    error_message TEXT,
    result_data TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (proposal_id) REFERENCES action_proposals(id)
);
CREATE INDEX IF NOT EXISTS idx_action_proposals_status ON action_proposals(status);
CREATE INDEX IF NOT EXISTS idx_action_proposals_ticket ON action_proposals(ticket_id);
CREATE INDEX IF NOT EXISTS idx_action_records_proposal ON action_records(proposal_id);
CREATE TRIGGER IF NOT EXISTS action_proposals_updated_at
AFTER UPDATE ON action_proposals
BEGIN
    UPDATE action_proposals SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id;
END;
CREATE TABLE IF NOT EXISTS workflows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT,
    ticket_id INTEGER,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (ticket_id) REFERENCES tickets(id)
);
"""


def _make_seed_db(path: Path) -> datetime:
    """A database as the seeds' code left it, with a row written the seeds' way (naive
    local isoformat)."""
    conn = sqlite3.connect(path)
    conn.executescript(SEED_SCHEMA)
    # Also the approval columns a later seed plan added with ALTER TABLE.
    for col in ("approved_at", "approved_by", "rejected_at", "rejected_by", "rejection_reason"):
        conn.execute(f"ALTER TABLE action_proposals ADD COLUMN {col} TEXT")
    proposed_local = datetime(2026, 1, 2, 3, 4, 5)  # naive local, like datetime.now()
    conn.execute(
        "INSERT INTO action_proposals (action_name, parameters, reason, status, proposed_at)"
        " VALUES ('transfer_leader', '{\"region_id\": 1}', 'old', 'validated', ?)",
        (proposed_local.isoformat(),),
    )
    conn.commit()
    conn.close()
    return proposed_local


async def test_database_made_by_seed_schema_opens_and_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "seed.db"
    proposed_local = _make_seed_db(path)
    async with ActionDB(path) as db:
        p = await db.get_proposal(1)
        assert p is not None
        assert p.action_name == "transfer_leader" and p.parameters == {"region_id": 1}
        assert p.status == ActionStatus.VALIDATED
        # Naive local time from the seed is now the same instant in UTC.
        assert p.proposed_at == proposed_local.astimezone(UTC)
        assert p.workflow_id is None and p.retry_count == 0 and p.max_retries == 3
        assert p.requires_approval is True  # unknown → safe default: needs approval
        # New tables work.
        wf = await db.create_workflow("wf", "d", [p.model_copy(update={"id": None})])
        assert (await db.get_workflow(wf)) is not None
        ok, _, _ = await db.verify_audit_chain()
        assert ok
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    stored = conn.execute("SELECT proposed_at FROM action_proposals WHERE id = 1").fetchone()[0]
    assert stored == to_db(proposed_local)  # rewritten to the fixed-width UTC form
    conn.close()


async def test_reopening_a_current_database_is_a_no_op(db_path: Path) -> None:
    async with ActionDB(db_path) as db:
        assert await db.data_version() >= 0
    async with ActionDB(db_path):
        pass
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    conn.close()


async def test_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    async with ActionDB(db_path):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNewError, match="newer than this Operator"):
        await ActionDB(db_path).open()


async def test_failed_migration_rolls_back_and_reports(tmp_path: Path) -> None:
    """Only "duplicate column" is swallowed: any other failure aborts the whole step."""
    path = tmp_path / "broken.db"
    conn = sqlite3.connect(path)
    # A table in the way of the new audit log, with an incompatible shape.
    conn.executescript(SEED_SCHEMA + "CREATE VIEW action_audit_log AS SELECT 1 AS x;")
    conn.close()
    with pytest.raises(DatabaseError):
        await ActionDB(path).open()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    cols = [r[1] for r in conn.execute("PRAGMA table_info(action_proposals)")]
    assert "workflow_id" not in cols  # the ALTERs of the failed step were rolled back
    conn.close()


async def test_connection_uses_wal_foreign_keys_and_private_file(db_path: Path) -> None:
    async with ActionDB(db_path) as db:

        def pragmas(conn: sqlite3.Connection) -> tuple[str, int, int]:
            return (
                conn.execute("PRAGMA journal_mode").fetchone()[0],
                conn.execute("PRAGMA foreign_keys").fetchone()[0],
                conn.execute("PRAGMA busy_timeout").fetchone()[0],
            )

        mode, fk, busy = await db.read(pragmas)
        # Waiting for a lock happens on the worker thread only (see the next tests).
        _, _, worker_busy = await db._call(pragmas)
    assert mode == "wal" and fk == 1 and busy == 0 and worker_busy >= 1000
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


async def test_a_new_database_has_small_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    from operator_core.db.actions import PAGE_SIZE

    new = tmp_path / "new.db"
    async with ActionDB(new) as db:
        await db.create_ticket(Ticket(title="t"))
    old = tmp_path / "old.db"
    _make_seed_db(old)  # made by the seeds' schema, at SQLite's default page size
    default = sqlite3.connect(old).execute("PRAGMA page_size").fetchone()[0]
    async with ActionDB(old) as db:
        assert (await db.get_proposal(1)) is not None
        await db.create_ticket(Ticket(title="t"))
    sizes = {}
    for path in (new, old):
        conn = sqlite3.connect(path)
        sizes[path.name] = conn.execute("PRAGMA page_size").fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
    assert default > PAGE_SIZE
    assert sizes == {"new.db": PAGE_SIZE, "old.db": default}


class LoopTicks:
    """Counts how often the event loop gets to run a 20 ms sleep: a loop blocked by a write
    waiting for a lock would not tick."""

    def __init__(self) -> None:
        self.count = 0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.02)
            self.count += 1

    def stop(self) -> None:
        self._task.cancel()


async def test_a_write_waits_out_another_process_lock_without_blocking_the_loop(
    db_path: Path,
) -> None:
    """Another connection holds the write lock for 0.4 s: our write waits for it on the worker
    thread (not failing, not blocking the event loop), then commits."""
    async with ActionDB(db_path) as db:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        loop.call_later(0.4, other.execute, "COMMIT")
        ticks = LoopTicks()
        started = loop.time()
        ticket = await db.create_ticket(Ticket(title="t", summary="s"))
        waited = loop.time() - started
        ticks.stop()
        other.close()
        assert ticket.id is not None and await db.get_ticket(ticket.id) is not None
    assert waited >= 0.35
    assert ticks.count >= 10  # the loop kept running while the write waited


@pytest.mark.sqlite_only("holds SQLite's write lock with BEGIN IMMEDIATE on the file")
async def test_a_runner_cycle_runs_at_once_or_not_at_all(make_executor, db_path: Path) -> None:
    """The runner's cycle runs right on the loop when the lock is free; while another process
    holds it, the at-once form does nothing, and the runner waits for the lock on the worker
    thread instead, then records and claims as usual."""
    from operator_core.runner import Runner

    ex = await make_executor()
    first = await ex.propose_action("ok", {}, "r")
    await ex.propose_action("ok", {}, "r")
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        assert ex.db.runner_cycle_now("r1", [], 1, 30.0) is None
    finally:
        other.execute("ROLLBACK")
    assert (await ex.db.get_proposal(first.id)).status == ActionStatus.VALIDATED
    claims, expired, lost = ex.db.runner_cycle_now("r1", [], 1, 30.0)
    assert [c.proposal.id for c in claims] == [first.id] and not expired and not lost
    assert (await ex.db.get_proposal(first.id)).status == ActionStatus.EXECUTING

    other.close()

    second_path = db_path.with_name("second.db")
    ex2 = await make_executor(path=second_path)
    for _ in range(3):
        await ex2.propose_action("ok", {}, "r")
    other = sqlite3.connect(second_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, other.execute, "COMMIT")
    started = loop.time()
    stats = await asyncio.wait_for(Runner(ex2, concurrency=2).run(until_idle=True), 20)
    other.close()
    assert loop.time() - started >= 0.25  # it waited for the lock...
    assert stats.completed == 3 and stats.failed == 0  # ...then ran everything
    assert (await ex2.db.counts()).by_status == {"completed": 3}


async def test_a_write_past_the_busy_timeout_is_one_clear_error(db_path: Path) -> None:
    async with ActionDB(db_path, busy_timeout=0.2) as db:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(DatabaseError, match="locked by another process"):
                await db.create_ticket(Ticket(title="t", summary="s"))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await db.read(lambda c: c.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]) == 0


async def test_corrupt_file_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="corrupt or not an Operator database"):
        await ActionDB(path).open()
    assert path.read_bytes() == b"this is not sqlite" * 100


async def test_timestamps_are_stored_fixed_width_utc(db_path: Path) -> None:
    async with ActionDB(db_path) as db:
        from operator_core.model.types import ActionProposal

        await db.create_proposal(
            ActionProposal(
                action_name="a",
                reason="r",
                scheduled_at=datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC) + timedelta(microseconds=5),
            )
        )
    conn = sqlite3.connect(db_path)
    proposed, scheduled = conn.execute(
        "SELECT proposed_at, scheduled_at FROM action_proposals"
    ).fetchone()
    conn.close()
    assert scheduled == "2030-05-06T07:08:09.000005Z"
    assert len(proposed) == 27 and proposed.endswith("Z")


async def test_updated_at_follows_every_status_change(db_path: Path) -> None:
    """Version 3's trigger stamps updated_at when an UPDATE changes the status without
    setting it; the runner's own transitions set it themselves."""
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry
    from operator_core.clock import FrozenClock
    from operator_core.db.actions import AttemptResult

    from tests.support.subjects import TestSubject

    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    ex = ActionExecutor(
        db_path, ActionRegistry.from_subject(TestSubject()), clock=clock, approval_mode=True
    )

    def updated(pid: int) -> str:
        conn = sqlite3.connect(db_path)
        try:
            return conn.execute(
                "SELECT updated_at FROM action_proposals WHERE id = ?", (pid,)
            ).fetchone()[0]
        finally:
            conn.close()

    async with ex:
        p = await ex.propose_action("ok", {}, "r")
        assert p.id is not None
        proposed = updated(p.id)
        await ex.reject_proposal(p.id, "alice", "no")  # not the runner: the trigger stamps
        rejected = updated(p.id)
        # (the trigger stamps the wall clock, not the frozen test clock)
        assert rejected != proposed and rejected.endswith("Z") and len(rejected) == 27
        q = await ex.propose_action("ok", {}, "r")
        assert q.id is not None
        await ex.approve_proposal(q.id, "alice")
        clock.advance(5)
        [claim] = await ex.db.claim_ready("runner", 1, lease_seconds=30)
        assert updated(q.id) == to_db(clock.now())
        clock.advance(5)
        await ex.db.finish_and_claim("runner", [(claim, AttemptResult(True, {}))], 0, 30)
        assert updated(q.id) == to_db(clock.now())


async def test_a_cancelled_wait_for_the_lock_does_not_let_a_write_cut_in(db_path: Path) -> None:
    """A caller cancelled while its write waits for the lock on the worker thread: the worker
    still holds the connection, so the next write must queue behind it, not run alongside."""
    async with ActionDB(db_path) as db:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        first = asyncio.create_task(db.create_ticket(Ticket(title="first", summary="s")))
        await asyncio.sleep(0.1)
        first.cancel()
        asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
        ticks = LoopTicks()
        second = await db.create_ticket(Ticket(title="second", summary="s"))
        ticks.stop()
        other.close()
        titles = await db.read(
            lambda c: [r[0] for r in c.execute("SELECT title FROM tickets ORDER BY id")]
        )
    assert second.id is not None
    assert ticks.count >= 8  # the second write waited on the worker, not on the loop's thread
    # The cancelled caller's write still ran (on the worker thread), before the second.
    assert titles == ["first", "second"]
