"""The test pool's reset (tests/support/pgpool.py) leaves a database equal to a fresh copy
of the template: every table's rows and every sequence, after a test wrote to all of the
engine's main tables (the append-only ones included) through the real executor."""

from __future__ import annotations

import psycopg
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db.pg.store import PgActionDB
from operator_core.db.url import NOWHERE

from tests.conftest import FAST_RETRY
from tests.pg import TEMPLATE, PgServer
from tests.support.pgpool import PgPool, snapshot
from tests.support.subjects import TestSubject


async def _write_everything(url: str) -> None:
    ex = ActionExecutor(
        NOWHERE,
        ActionRegistry.from_subject(TestSubject()),
        approval_mode=True,
        retry_config=FAST_RETRY,
        db=PgActionDB(url),
    )
    async with ex:
        p = await ex.propose_action("ok", {}, "pool", proposed_by="alice@ops")
        await ex.approve_proposal(p.id, "bob@ops")
        other = await ex.propose_action("ok", {}, "no", proposed_by="alice@ops")
        await ex.reject_proposal(other.id, "bob@ops", "no")
        await ex.open_ticket("disk", severity="high", actor="alice@ops")
        await ex.set_policy("four_eyes", True, "alice@ops")
        (claim,) = await ex.db.claim_ready("r1", 1, 30)
        assert claim.proposal.id == p.id


def _state(url: str) -> tuple[object, ...]:
    with psycopg.connect(url, autocommit=True) as conn:
        snap = snapshot(conn)
    return (snap.fingerprint, snap.tables, snap.rows, snap.sequences)


async def test_a_reset_database_equals_a_fresh_copy(pg_server: PgServer) -> None:
    pool = PgPool(TEMPLATE, pg_server.url, pg_server.create_db, pg_server.drop_db)
    fresh = pg_server.create_db(TEMPLATE)
    try:
        name = pool.acquire()
        before = _state(pg_server.url(name))
        assert before == _state(pg_server.url(fresh))
        await _write_everything(pg_server.url(name))
        dirty = _state(pg_server.url(name))
        # The control: the test wrote rows the reset must remove and moved sequences.
        assert dirty[2] != before[2] and dirty[3] != before[3]
        pool.release(name)
        assert pool.acquire() == name  # reused, not replaced
        after = _state(pg_server.url(name))
        for table in before[1]:  # type: ignore[attr-defined]
            assert after[2][table] == before[2][table], table  # type: ignore[index]
        assert after[3] == before[3]
        assert after == before
        # And it still works as a fresh one: ids start again at 1.
        await _write_everything(pg_server.url(name))
        pool.release(name)
    finally:
        pool.close()
        pg_server.drop_db(fresh)


def test_a_database_whose_schema_changed_is_dropped_not_reused(pg_server: PgServer) -> None:
    pool = PgPool(TEMPLATE, pg_server.url, pg_server.create_db, pg_server.drop_db)
    try:
        name = pool.acquire()
        with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
            conn.execute("ALTER TABLE action_audit_log DISABLE TRIGGER USER")
        pool.release(name)
        assert pool.acquire() != name
        with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
            gone = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            assert gone.fetchone() is None
    finally:
        pool.close()
