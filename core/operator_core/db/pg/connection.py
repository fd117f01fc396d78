"""Running an operation on PostgreSQL: the counterpart of db/connection.py's Store plumbing.

Every engine operation is one synchronous function ``fn(conn, *args)`` run as one
transaction. Here it runs on a psycopg *synchronous* connection owned by one worker thread
per database object (as aiosqlite owns its sqlite3 connection): the function runs whole on
that thread, with no hop back to the event loop between its statements (the figures that
decided this against psycopg's async API are in docs/postgres.md).

- A write begins READ COMMITTED and takes one transaction-scoped advisory lock
  (``WRITE_LOCK``) before anything else: every write appends to the audit chain, whose
  append must be serialised across hosts anyway, so taking that lock first gives each
  operation the one-writer-at-a-time semantics of SQLite's BEGIN IMMEDIATE, with no
  deadlock (one lock, always taken first) and every statement after it seeing every write
  committed before (docs/postgres.md).
- A runner cycle (``cycle``) takes that lock shared, so cycles of several runners overlap;
  its events are appended at its end under the chain lock (audit.flush). A cycle that
  needs one writer at a time (db/shared.py) is rolled back and run again exclusive.
- A read runs REPEATABLE READ READ ONLY: one snapshot, as a SQLite read transaction.
- Connection failures become one-line DatabaseErrors with the URL's password hidden; a lost
  connection is dropped and made again on the next call (the failed call is not retried: a
  write may have committed before the connection went).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from operator_core.db.pg import schema
from operator_core.db.pg.listen import commit_sql
from operator_core.db.pg.rows import PgConn, adapt, row_factory
from operator_core.db.pg.txn import BEGIN_CYCLE, BEGIN_READ, BEGIN_WRITE
from operator_core.db.shared import NeedsExclusive
from operator_core.db.url import redact, scrub
from operator_core.errors import DatabaseError

if TYPE_CHECKING:
    import psycopg

    from operator_core.db.killfile import KillFile

T = TypeVar("T")

CONNECT_TIMEOUT = 5  # seconds: an unreachable host fails one command, not the terminal's day


class PgDatabase:
    """One PostgreSQL connection, made on first use, and the ways to run a function on it:
    ``read`` and ``write``, each one transaction on the connection's own thread."""

    def __init__(
        self,
        url: str,
        *,
        lock_timeout: float = 5.0,
        kill_file: KillFile | None = None,
        application_name: str = "operator",
    ) -> None:
        self.url = url
        self.display = redact(url)
        self._lock_timeout_ms = int(lock_timeout * 1000)
        self._kill_file = kill_file
        self._application_name = application_name
        self.token = os.urandom(8).hex()
        """Names this object's NOTIFYs: its own process's waiters on it skip them."""
        self._commit_notify = commit_sql(self.token)
        self._conn: PgConn | None = None
        self._thread: ThreadPoolExecutor | None = None  # made on first use, ended by close

    # ------------------------------------------------------------------ on the worker

    def _connect(self) -> PgConn:
        import psycopg

        try:
            raw = psycopg.connect(
                self.url,
                autocommit=True,  # transactions are ours: BEGIN_READ / BEGIN_WRITE
                connect_timeout=CONNECT_TIMEOUT,
                application_name=self._application_name,
                row_factory=row_factory,
            )
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {self.display}: {self._why(exc)}"
            ) from None
        adapt(raw)
        try:
            # A write waits this long for another's lock, then fails as on SQLite.
            raw.execute(f"SET lock_timeout = {self._lock_timeout_ms}")
        except psycopg.Error as exc:
            raw.close()
            raise self._translate(exc) from None
        return PgConn(raw, self._kill_file)

    def _ensure(self) -> PgConn:
        if self._conn is not None and (self._conn.raw.closed or self._conn.raw.broken):
            self._drop()
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.raw.close()

    def run_txn(self, begin: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` in one transaction opened by ``begin``; commit, or roll back
        if it raises. Runs on the calling thread: the worker's, through ``_call``, or a
        test's or a command's own thread when the object is used synchronously."""
        import psycopg

        conn = self._ensure()
        shared = begin == BEGIN_CYCLE
        try:
            try:
                conn.raw.execute(begin)  # may fail after BEGIN: waiting for the lock
                if shared:
                    conn.shared, conn.audit_buffer = True, []
                before = conn.total_changes
                result = fn(conn, *args)
                if conn.audit_buffer:  # never left unwritten (fn runs audit.flush)
                    raise AssertionError("a shared-mode cycle's events were not appended")
                # A write that changed rows wakes every listener (pg/listen.py): NOTIFY
                # in the COMMIT's own round trip, delivered when the change is visible.
                changed = begin != BEGIN_READ and conn.total_changes != before
                conn.raw.execute(self._commit_notify if changed else "COMMIT")
            except BaseException:
                if not conn.raw.broken and conn.in_transaction:
                    conn.raw.execute("ROLLBACK")
                raise
            finally:
                conn.shared, conn.audit_buffer = False, None
        except psycopg.IntegrityError:
            raise  # the engine tells a broken rule from a broken database (as sqlite3's)
        except psycopg.Error as exc:
            raise self._translate(exc) from None
        return result

    def run_cycle(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` as a runner cycle (the write lock shared); run again under
        the lock exclusive if it asks (db/shared.py), on this same thread."""
        try:
            return self.run_txn(BEGIN_CYCLE, fn, *args)
        except NeedsExclusive:
            return self.run_txn(BEGIN_WRITE, fn, *args)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(pgconn, *args)`` outside any transaction of ours (migrations run their own)."""
        import psycopg

        conn = self._ensure()
        try:
            return fn(conn, *args)
        except psycopg.IntegrityError:
            raise
        except psycopg.Error as exc:
            raise self._translate(exc) from None

    def _why(self, exc: BaseException) -> str:
        return scrub(str(exc) or type(exc).__name__, self.url)

    def _translate(self, exc: psycopg.Error) -> DatabaseError:
        import psycopg.errors

        conn = self._conn
        if conn is not None and (conn.raw.closed or conn.raw.broken):
            self._drop()  # made again on the next call
            return DatabaseError(
                f"lost the connection to PostgreSQL at {self.display}: {self._why(exc)}"
            )
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return DatabaseError(
                f"database {self.display} is locked by another process "
                f"(waited {self._lock_timeout_ms / 1000:g}s); try again"
            )
        return DatabaseError(f"database error on {self.display}: {self._why(exc)}")

    # ------------------------------------------------------------------ from the event loop

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="operator-pg")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: fn(*args))

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the connection's thread with no transaction of ours:
        each statement commits on its own (as sqlite3 outside BEGIN), without the lock."""
        return await self._call(self.run, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one read-only snapshot."""
        return await self._call(self.run_txn, BEGIN_READ, fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` as one write transaction, serialised with every other."""
        return await self._call(self.run_txn, BEGIN_WRITE, fn, *args)

    async def cycle(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` as a runner cycle (``run_cycle``)."""
        return await self._call(self.run_cycle, fn, *args)

    async def open(self, *, migrate: bool = True) -> PgDatabase:
        """Connect and bring the schema to this version (``migrate=False``: only check that
        the database is an Operator database of this version)."""
        step = schema.migrate if migrate else schema.check_current
        await self._call(self.run, step, self.display)
        return self

    async def migrate(self) -> tuple[int | None, int]:
        """Connect and migrate: the schema version before (None: no Operator schema) and
        after."""

        def both(conn: PgConn, display: str) -> tuple[int | None, int]:
            return schema.read_version(conn), schema.migrate(conn, display)

        return await self._call(self.run, both, self.display)

    async def close(self) -> None:
        """Close the connection and end its thread (a later call starts both again)."""
        if self._thread is None:
            self._drop()
            return
        await self._call(self._drop)
        thread, self._thread = self._thread, None
        thread.shutdown(wait=True)

    def close_sync(self) -> None:
        self._drop()
        if self._thread is not None:
            thread, self._thread = self._thread, None
            thread.shutdown(wait=False)
