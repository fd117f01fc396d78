"""LISTEN/NOTIFY wake-ups on a real PostgreSQL: which commits wake which waiters."""

from __future__ import annotations

import asyncio

import pytest
from operator_core.db.pg import listen
from operator_core.db.pg.store import PgStore
from operator_core.errors import ConfigError

from tests.pg import PgServer

INSERT = "INSERT INTO tickets (title) VALUES ('t')"


async def _listening(store: PgStore) -> listen.PgListener:
    waiter = store.listener()
    assert waiter.start()
    assert waiter.listening is not None
    await asyncio.to_thread(waiter.listening.wait, 10)
    assert waiter.listening.is_set()
    # A connection that starts listening wakes its waiters once (what committed before it
    # went unseen): let that pass.
    await asyncio.sleep(0.05)
    waiter.event.clear()
    return waiter


async def _woken(waiter: listen.PgListener, within: float = 5.0) -> bool:
    try:
        await asyncio.wait_for(waiter.event.wait(), within)
    except TimeoutError:
        return False
    waiter.event.clear()
    return True


async def test_a_changing_commit_wakes_the_other_stores_waiters_only(pg_url: str) -> None:
    a, b = PgStore(pg_url), PgStore(pg_url)
    await a.open()
    await b.open()
    wa, wb = await _listening(a), await _listening(b)
    try:
        await a.write(lambda conn: conn.execute(INSERT))
        assert await _woken(wb)
        assert not await _woken(wa, 0.5)  # a store does not wake itself
        # Nothing changed, or rolled back: no NOTIFY, nobody woken.
        await a.write(lambda conn: conn.execute("SELECT 1"))

        def fails(conn: object) -> None:
            conn.execute(INSERT)  # type: ignore[attr-defined]
            raise RuntimeError("no")

        with pytest.raises(RuntimeError):
            await a.write(fails)
        assert not await _woken(wb, 0.5)
        await b.write(lambda conn: conn.execute(INSERT))
        assert await _woken(wa)
    finally:
        wa.stop()
        wb.stop()
        await a.close()
        await b.close()


async def test_poke_listeners_wakes_every_waiter_its_own_too(pg_url: str) -> None:
    a, b = PgStore(pg_url), PgStore(pg_url)
    await a.open()
    wa, wb = await _listening(a), await _listening(b)
    try:
        a.poke_listeners()
        assert await _woken(wa)
        assert await _woken(wb)
    finally:
        wa.stop()
        wb.stop()
        await a.close()


async def test_waiters_of_one_process_share_one_listening_connection(pg_url: str) -> None:
    import psycopg

    a = PgStore(pg_url)
    waiters = [await _listening(a) for _ in range(3)]
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'operator-listen'"
    try:
        with psycopg.connect(pg_url) as conn:
            assert conn.execute(sql).fetchone() == (1,)
    finally:
        for w in waiters:
            w.stop()


async def test_listening_off_or_a_bad_url(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> None:
    store = PgStore(pg_url)
    monkeypatch.setenv(listen.LISTEN_URL_ENV, "off")
    assert not store.listener().start()  # the caller polls
    monkeypatch.setenv(listen.LISTEN_URL_ENV, "mysql://u:secret@h/db")
    with pytest.raises(ConfigError) as err:
        store.listener()
    assert "secret" not in str(err.value)
    monkeypatch.setenv(listen.POLL_ENV, "0")
    with pytest.raises(ConfigError, match="OPERATOR_PG_POLL_SECONDS"):
        store.poll_seconds()
    monkeypatch.setenv(listen.POLL_ENV, "60")
    assert store.poll_seconds() == 60


async def test_the_listener_comes_back_after_a_server_restart(
    pg_server: PgServer, pg_url: str
) -> None:
    if pg_server.cluster is None:
        pytest.skip("PG_TEST_URL names an external server: this test restarts its own")
    a, b = PgStore(pg_url), PgStore(pg_url)
    wb = await _listening(b)
    try:
        await asyncio.to_thread(pg_server.cluster.restart)
        # Back: it says so by waking its waiters (what committed meanwhile went unseen).
        assert await _woken(wb, 20)
        assert wb.listening is not None and wb.listening.is_set()
        await a.write(lambda conn: conn.execute(INSERT))
        assert await _woken(wb)
    finally:
        wb.stop()
        await a.close()


async def test_a_process_that_pokes_and_exits_at_once_still_wakes_the_others(
    pg_url: str,
) -> None:
    import sys

    store = PgStore(pg_url)
    waiter = await _listening(store)
    code = (
        "import sys; from operator_core.db.pg.store import PgStore; "
        "PgStore(sys.argv[1]).poke_listeners()"
    )
    try:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, pg_url)
        assert await proc.wait() == 0
        assert await _woken(waiter)
    finally:
        waiter.stop()
