"""``faults.trouble`` on PostgreSQL's errors, raised by a real server: the database's own
trouble (a lock wait that ran out, a dropped connection) is told apart from a value's fault
(a unique violation), as on SQLite; so the runner's automation cycle (and the action
runner's) roll back and try again instead of failing an execution for good."""

from __future__ import annotations

import psycopg
import pytest
from operator_core.db import faults

# A one-row table every database has; a row lock on it is what a second writer waits for.
_LOCK_ROW = "SELECT last_id FROM audit_sequence WHERE id = 1 FOR UPDATE"
_TOUCH_ROW = "UPDATE audit_sequence SET last_id = last_id WHERE id = 1"


def _raised(conn: psycopg.Connection, sql: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql)  # type: ignore[arg-type]
    return caught.value


def test_a_lock_wait_that_runs_out_is_trouble(pg_url: str) -> None:
    with psycopg.connect(pg_url) as holder, psycopg.connect(pg_url) as waiter:
        holder.execute(_LOCK_ROW)
        waiter.execute("SET lock_timeout = '100ms'")
        exc = _raised(waiter, _TOUCH_ROW)
        assert isinstance(exc, psycopg.errors.LockNotAvailable)
        assert faults.trouble(exc) == "locked"
        # Wrapped by the code that met it, the cause still says so.
        wrapped = RuntimeError("could not advance it")
        wrapped.__cause__ = exc
        assert faults.trouble(wrapped) == "locked"


def test_a_dropped_connection_is_trouble(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as admin, psycopg.connect(pg_url) as victim:
        pid = victim.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        exc = _raised(victim, "SELECT 1")
        assert isinstance(exc, psycopg.OperationalError)
        assert faults.trouble(exc) in {"interrupted", "connection lost"}
        closed = _raised(victim, "SELECT 1")  # the connection is closed now: client-side
        assert closed.sqlstate is None and faults.trouble(closed) == "connection lost"


def test_a_values_fault_is_not_trouble(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TEMP TABLE t (k INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        exc = _raised(conn, "INSERT INTO t VALUES (1)")
        assert isinstance(exc, psycopg.errors.UniqueViolation)
        assert faults.trouble(exc) is None
        conn.rollback()
        exc = _raised(conn, "SELECT CAST('x' AS INTEGER)")
        assert faults.trouble(exc) is None
        conn.rollback()
        exc = _raised(conn, "SELECT * FROM no_such_table")
        assert faults.trouble(exc) == "SQL error"  # as SQLite's "no such table"
