"""Running operations on a real PostgreSQL: the write lock, snapshots, rows, errors."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from operator_core.db.pg.connection import PgDatabase
from operator_core.db.pg.txn import BEGIN_READ, BEGIN_WRITE
from operator_core.errors import DatabaseError

from tests.pg import PgServer


def _counter(conn: Any) -> None:
    conn.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    conn.execute("INSERT INTO counter VALUES (1, 0)")


def _bump(conn: Any) -> None:
    """Read, wait, write: two unserialised runs would both write n + 1."""
    n = conn.execute("SELECT n FROM counter WHERE id = 1").fetchone()["n"]
    time.sleep(0.002)
    conn.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))


def _hammer(url: str, begin: str, rounds: int) -> int:
    setup = PgDatabase(url)
    setup.run_txn(BEGIN_WRITE, _counter)
    dbs = [PgDatabase(url), PgDatabase(url)]
    errors: list[BaseException] = []

    def worker(db: PgDatabase) -> None:
        try:
            for _ in range(rounds):
                db.run_txn(begin, _bump)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    n = setup.run_txn(BEGIN_READ, lambda c: c.execute("SELECT n FROM counter").fetchone()[0])
    for db in [setup, *dbs]:
        db.close_sync()
    return int(n)


def test_writes_are_serialised_by_the_write_lock(pg_url: str) -> None:
    assert _hammer(pg_url, BEGIN_WRITE, 40) == 80


def test_without_the_lock_the_same_writes_lose_updates(pg_url: str) -> None:
    # The control: the lock, not luck, keeps the count above.
    assert _hammer(pg_url, "BEGIN", 40) < 80


def test_a_read_is_one_snapshot(pg_url: str) -> None:
    reader, writer = PgDatabase(pg_url), PgDatabase(pg_url)
    count = "SELECT count(*) FROM tickets"

    def read(conn: Any) -> tuple[int, int]:
        before = conn.execute(count).fetchone()[0]
        writer.run_txn(BEGIN_WRITE, lambda c: c.execute("INSERT INTO tickets (title) VALUES ('t')"))
        return before, conn.execute(count).fetchone()[0]

    try:
        assert reader.run_txn(BEGIN_READ, read) == (0, 0)
        assert reader.run_txn(BEGIN_READ, lambda c: c.execute(count).fetchone()[0]) == 1
        with pytest.raises(DatabaseError, match="read-only transaction"):
            reader.run_txn(BEGIN_READ, lambda c: c.execute("DELETE FROM tickets"))
    finally:
        reader.close_sync()
        writer.close_sync()


async def test_rows_read_like_sqlite_rows_and_statements_translate(pg_url: str) -> None:
    db = PgDatabase(pg_url)
    try:
        await db.open()
        new = await db.write(
            lambda c: c.execute(
                "INSERT INTO tickets (title, summary) VALUES (:t, :s) RETURNING id, title",
                {"t": "50% off", "s": "it's ?"},
            ).fetchone()
        )
        assert (new[0], new["title"], new[1]) == (1, "50% off", "50% off")
        row = await db.read(
            lambda c: c.execute(
                "SELECT title, summary, '100%' AS pct FROM tickets WHERE title LIKE ? AND id = ?",
                ("50%", 1),
            ).fetchone()
        )
        assert row.keys() == ["title", "summary", "pct"]
        assert dict(zip(row.keys(), row, strict=True)) == {
            "title": "50% off",
            "summary": "it's ?",
            "pct": "100%",
        }
        assert len(row) == 3 and row[-1] == "100%"
        # A bool is stored as SQLite stores it (flags are 0/1 integers), and a SQLite-only
        # index hint or IS-comparison with a value runs too.
        flags = await db.write(
            lambda c: (
                c.execute(
                    "UPDATE workflows SET requires_approval = ? WHERE id = ? RETURNING id",
                    (True, 1),
                ).rowcount
                + c.execute(
                    "INSERT INTO workflows (name, requires_approval) VALUES (?, ?) "
                    "RETURNING requires_approval",
                    ("w", False),
                ).fetchone()[0]
            )
        )
        assert flags == 0
        found = await db.read(
            lambda c: c.execute(
                "SELECT name FROM workflows INDEXED BY idx_workflows_status "
                "WHERE requires_approval IS ? AND description IS NOT ?",
                (False, "x"),
            ).fetchall()
        )
        assert [r["name"] for r in found] == ["w"]
    finally:
        await db.close()


async def test_a_failed_operation_rolls_back_and_the_connection_goes_on(pg_url: str) -> None:
    db = PgDatabase(pg_url)

    def half(conn: Any) -> None:
        conn.execute("INSERT INTO tickets (title) VALUES ('half')")
        raise ValueError("no")

    try:
        with pytest.raises(ValueError):
            await db.write(half)
        with pytest.raises(psycopg.IntegrityError):
            await db.write(lambda c: c.execute("INSERT INTO tickets (title) VALUES (NULL)"))
        assert await db.read(lambda c: c.execute("SELECT count(*) FROM tickets").fetchone()[0]) == 0
    finally:
        await db.close()


def test_a_write_waits_for_the_lock_then_fails_in_one_line(pg_url: str) -> None:
    holder, waiter = PgDatabase(pg_url), PgDatabase(pg_url, lock_timeout=0.2)
    try:

        def hold(conn: Any) -> None:
            with pytest.raises(DatabaseError, match=r"locked by another process \(waited 0.2s\)"):
                waiter.run_txn(BEGIN_WRITE, lambda c: None)

        holder.run_txn(BEGIN_WRITE, hold)
        waiter.run_txn(BEGIN_WRITE, lambda c: None)  # free again
    finally:
        holder.close_sync()
        waiter.close_sync()


def _one_line_error(url: str) -> str:
    db = PgDatabase(url)
    try:
        with pytest.raises(DatabaseError) as caught:
            db.run_txn(BEGIN_READ, lambda c: None)
    finally:
        db.close_sync()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_connection_errors_are_one_line_without_the_password(pg_server: PgServer) -> None:
    admin = pg_server.admin_url
    password = psycopg.conninfo.conninfo_to_dict(admin).get("password")
    user_part = admin.split("//", 1)[1].rsplit("@", 1)[0]
    wrong_port = admin.replace(admin.rsplit(":", 1)[1].split("/")[0], "1", 1)
    cases = {
        "refused": (wrong_port, "cannot connect to PostgreSQL"),
        "missing": (pg_server.url("no_such_db"), 'database "no_such_db" does not exist'),
        "bad password": (
            admin.replace(f"{user_part}@", f"{user_part.split(':')[0]}:Wr0ngPassw0rd@", 1),
            "password authentication failed",
        ),
    }
    for name, (url, expected) in cases.items():
        message = _one_line_error(url)
        assert expected in message, name
        assert "***" in message or not password, name
        for secret in filter(None, [password, "Wr0ngPassw0rd"]):
            assert secret not in message, name


def test_a_lost_connection_is_made_again_after_a_restart(pg_server: PgServer, pg_url: str) -> None:
    if pg_server.cluster is None:
        pytest.skip("PG_TEST_URL names an external server: this test restarts its own")
    db = PgDatabase(pg_url)
    count = "SELECT count(*) FROM tickets"
    try:
        assert db.run_txn(BEGIN_READ, lambda c: c.execute(count).fetchone()[0]) == 0
        pg_server.cluster.restart()
        with pytest.raises(DatabaseError, match="lost the connection to PostgreSQL") as caught:
            db.run_txn(BEGIN_READ, lambda c: c.execute(count).fetchone()[0])
        assert "\n" not in str(caught.value) and pg_server.cluster.password not in str(caught.value)
        assert db.run_txn(BEGIN_READ, lambda c: c.execute(count).fetchone()[0]) == 0
    finally:
        db.close_sync()


async def test_instr_translates_to_strpos_with_the_same_results(pg_url: str) -> None:
    """The history search and the audit filter test ``instr(…) > 0``: PostgreSQL's
    ``strpos`` gives what SQLite's ``instr`` gives, NULLs included."""
    import sqlite3

    sql = "SELECT instr(?, ?), instr(lower(?), ?), instr(?, ?), instr(NULL, ?), instr(?, '')"
    params = ("abcabc", "ca", "HeLLo", "ll", "abc", "x", "a", "abc")
    want = tuple(sqlite3.connect(":memory:").execute(sql, params).fetchone())
    assert want == (3, 3, 0, None, 1)
    db = PgDatabase(pg_url)
    try:
        got = await db.read(lambda c: tuple(c.execute(sql, params).fetchone()))
    finally:
        await db.close()
    assert got == want


@pytest.mark.parametrize("count", [0, 1, 3])
def test_executemany_counts_its_rows_however_many(pg_url: str, count: int) -> None:
    """One row is one plain statement (no pipeline): the same rows, rowcount and changes."""
    db = PgDatabase(pg_url)
    db.run_txn(BEGIN_WRITE, _counter)

    def many(conn: Any) -> tuple[int, int]:
        before = conn.total_changes
        rows = ((i, i * 10) for i in range(2, 2 + count))  # an iterator, as a caller may give
        cur = conn.executemany("INSERT INTO counter VALUES (?, ?)", rows)
        return cur.rowcount, conn.total_changes - before

    try:
        assert db.run_txn(BEGIN_WRITE, many) == (count, count)
        found = db.run_txn(BEGIN_READ, lambda c: c.execute("SELECT id, n FROM counter").fetchall())
        assert sorted(tuple(r) for r in found) == [(1, 0)] + [
            (i, i * 10) for i in range(2, 2 + count)
        ]
    finally:
        db.close_sync()
