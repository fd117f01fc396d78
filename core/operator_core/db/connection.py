"""The connection: the one module that knows aiosqlite's internals.

Every operation runs as a single function on the connection, so a state transition and its
audit event are one transaction no other coroutine can interleave with. Writes take the
write lock up front (BEGIN IMMEDIATE). A function runs on aiosqlite's worker thread, where
SQLite may wait out another process's lock, or, when that needs no waiting, right on the
event loop's thread (``_txn_now``): the worker's private ``Connection._conn`` (the sqlite3
connection) and ``Connection._execute`` (run a function on the worker) are used here only,
held to aiosqlite's version by the upper bound in pyproject.toml and by
tests/core/test_private_apis.py.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import aiosqlite

from operator_core.anchor.chain import read_origin
from operator_core.clock import SYSTEM_CLOCK, Clock
from operator_core.db import audit, health, inuse
from operator_core.db.budgets import Budgets
from operator_core.db.checkpoint import SAFETY_NET_PAGES, Checkpointer
from operator_core.db.killfile import KillFile
from operator_core.db.policy import ApprovalGate
from operator_core.db.schema import LATEST_VERSION, migrate
from operator_core.env import env_number
from operator_core.errors import DatabaseError
from operator_core.notify import Listener, Notifier, Waker

if TYPE_CHECKING:
    from operator_core.anchor.publisher import Publisher

T = TypeVar("T")

PAGE_SIZE = 2048
"""Page size of a new database: every commit writes each page it touched to the WAL whole,
and a proposal touches about seven small ones (figures in docs/performance.md)."""


class Connection(sqlite3.Connection):
    """Our sqlite3 connection: knows its database's kill file, which claims, proposals and
    resume honour. It holds no state of any transaction (``audit_types`` lives only while
    ``audit.noting`` runs one)."""

    kill_file: KillFile | None = None
    audit_types: list[str] | None = None
    audit_tail: tuple[int, int, str] | None = None
    audit_buffer = None  # a PostgreSQL cycle's (audit.flush): never on SQLite
    shared = False  # nor is a transaction ever in shared mode (db/shared.py)
    insert_id = None  # sqlite3's lastrowid serves (dialect.insert_id): found without a miss
    insert_ids = None  # one insert_id per row serves (rows.insert_proposals)


def raw_connection(conn: aiosqlite.Connection) -> sqlite3.Connection:
    """The sqlite3 connection inside aiosqlite's (its private ``_conn``)."""
    return conn._conn


def is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


NOT_NOW = object()
"""A transaction that could not run without waiting, and so did not run."""


def counting_changes(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> tuple[T, bool]:
    """``fn(conn, *args)`` and whether it changed anything."""
    before = conn.total_changes
    result = fn(conn, *args)
    return result, conn.total_changes != before


def finish_txn(conn: sqlite3.Connection, fn: Callable[..., T], args: Sequence[Any]) -> T:
    """Run ``fn`` inside the transaction just begun; commit, or roll back if it raises."""
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


class Store:
    """One aiosqlite connection, and the ways to run a function on it: ``read``, ``write``
    and ``_call`` (the modules beside this one add the engine's operations on top)."""

    def __init__(
        self,
        db_path: Path | str,
        *,
        clock: Clock | None = None,
        busy_timeout: float | None = None,
        synchronous: str | None = None,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        """``create=False``: the file must already hold an Operator database; no directory,
        file or schema is made (a command that acts on existing work). ``read_only`` also
        implies it and keeps the file as it is: no migration, no journal-mode switch, no
        checkpoint publisher (the CLI's reading commands)."""
        self.db_path = Path(db_path).expanduser()
        self._create = create and not read_only
        self._read_only = read_only
        # Whether the whole file passed PRAGMA quick_check: asked once, before the first
        # write of this connection (see health.py).
        self._checked = False
        self.clock = clock or SYSTEM_CLOCK
        self._busy_timeout = (
            busy_timeout
            if busy_timeout is not None
            else env_number("OPERATOR_BUSY_TIMEOUT", 5.0, low=0, high=3600, unit=" (seconds)")
        )
        self._synchronous = (
            synchronous or os.environ.get("OPERATOR_SQLITE_SYNCHRONOUS") or "NORMAL"
        ).upper()
        self._conn: aiosqlite.Connection | None = None
        self._in_use: int | None = None  # see inuse.py
        # Calls handed to the worker thread, and calls it has finished; each counter has one
        # writer (the event loop's thread, the worker thread), so neither loses a count.
        self._worker_sent = 0
        self._worker_done = 0
        self._notifier = Notifier(self.db_path)
        self._checkpointer = Checkpointer(self.db_path)
        self.kill_file = KillFile(self.db_path)
        self.approval_gate: ApprovalGate | None = None
        """Whether an action (by name) requires approval by the definitions of the subject
        this process runs: its executor sets it; every claim checks it."""
        self.budget_source: Callable[[], Budgets] | None = None
        """The execution budgets of the definitions this process runs (its executor sets
        it): every claim counts the attempts in their windows."""
        self.audit_publisher: Publisher | None = None
        """Publishes signed checkpoints of the audit chain (anchor/runtime.py), started by the
        first write that appends (or ``start_audit_publisher``): every write transaction then
        reports what it appended, after COMMIT."""
        # None until decided: a process that only reads never loads the signing code (about
        # 60 ms of imports and a key file read), so read commands start as fast as before.
        self._publishing: bool | None = None
        self._origin: str | None = None

    def execution_budgets(self) -> Budgets | None:
        return self.budget_source() if self.budget_source is not None else None

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> Self:
        if self._conn is not None:
            return self
        if self._synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise DatabaseError(
                f"OPERATOR_SQLITE_SYNCHRONOUS must be NORMAL or FULL, not {self._synchronous!r}"
            )
        path = self.db_path
        if path.is_dir():
            raise DatabaseError(f"database {path} is a directory, not a file")
        if not self._create:
            if not path.is_file():
                raise DatabaseError(f"no Operator database at {path}")
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            except OSError as exc:
                raise DatabaseError(f"cannot create database {path}: {exc.strerror}") from exc
            self._in_use = inuse.hold_shared(path)
        try:
            # check_same_thread=False: short transactions also run on the event loop's
            # thread, never at the same time as the worker thread (see _call).
            conn = await aiosqlite.connect(
                str(path),
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
                factory=Connection,
            )
        except sqlite3.Error as exc:  # e.g. the path is a directory
            self._release_in_use()
            raise self._translate(exc) from exc
        try:
            await conn._execute(self._setup, raw_connection(conn))
        except sqlite3.DatabaseError as exc:
            await conn.close()
            self._release_in_use()
            raise self._translate(exc) from exc
        except BaseException:
            await conn.close()
            self._release_in_use()
            raise
        if not self._create:
            # Only once the file is known to be ours: no lock file beside a stranger's.
            self._in_use = inuse.hold_shared(path)
        self._conn = conn
        return self

    def _setup(self, raw: sqlite3.Connection) -> None:
        raw.row_factory = sqlite3.Row
        if isinstance(raw, Connection):
            raw.kill_file = self.kill_file
        raw.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        # Nothing below may write to a file that is not a healthy Operator database.
        health.check_is_operator(raw, self.db_path)
        if not self._create:
            health.check_is_current(raw, self.db_path, LATEST_VERSION, self._read_only)
        if self._read_only:
            raw.execute(f"PRAGMA synchronous = {self._synchronous}")
            raw.execute("PRAGMA foreign_keys = ON")
            raw.execute("PRAGMA busy_timeout = 0")
            return
        if raw.execute("PRAGMA user_version").fetchone()[0] < LATEST_VERSION:
            health.quick_check(raw, self.db_path)  # before a migration writes to it
            self._checked = True
        # Before anything is written (a no-op on an existing database): see PAGE_SIZE.
        raw.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        mode = raw.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.DatabaseError(f"cannot switch to WAL journal (got {mode})")
        raw.execute(f"PRAGMA synchronous = {self._synchronous}")
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_NET_PAGES}")  # see checkpoint.py
        if pages := os.environ.get("OPERATOR_TEST_MAX_PAGE_COUNT"):
            # For tests only: this connection may not grow the file past that many pages, so
            # SQLite reports a full disk (SQLITE_FULL) without a full disk.
            raw.execute(f"PRAGMA max_page_count = {int(pages)}")
        migrate(raw, str(self.db_path))
        raw.execute("PRAGMA busy_timeout = 0")
        self._origin = read_origin(raw)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
        if self.audit_publisher is not None:
            from operator_core.anchor.runtime import close_publisher

            publisher, self.audit_publisher = self.audit_publisher, None
            close_publisher(publisher)
        self._publishing = None
        self._release_in_use()
        self._notifier.close()
        self._checkpointer.close()

    def _release_in_use(self) -> None:
        fd, self._in_use = self._in_use, None
        inuse.release(fd)

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    # ------------------------------------------------------------------ plumbing

    def _translate(self, exc: sqlite3.Error) -> DatabaseError:
        text = str(exc)
        if is_busy(exc):
            return DatabaseError(
                f"database {self.db_path} is locked by another process "
                f"(waited {self._busy_timeout:g}s); try again"
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return DatabaseError(
                f"database {self.db_path} is corrupt or not an Operator database: {text}"
            )
        if "readonly" in text:
            return DatabaseError(f"database {self.db_path} is read-only: {text}")
        return DatabaseError(f"database error on {self.db_path}: {text}")

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the connection's worker thread, where SQLite may wait
        out another process's lock for up to the busy timeout without blocking the loop."""
        if self._conn is None:
            await self.open()
        assert self._conn is not None
        raw = raw_connection(self._conn)
        busy_ms = int(self._busy_timeout * 1000)

        def waiting(conn: sqlite3.Connection, *a: Any) -> T:
            try:
                conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
                try:
                    return fn(conn, *a)
                finally:
                    conn.execute("PRAGMA busy_timeout = 0")
            finally:
                # Counted here, on the worker thread, when the work is really over: a caller
                # cancelled while waiting does not stop the worker from running it.
                self._worker_done += 1

        self._worker_sent += 1
        try:
            return await self._conn._execute(waiting, raw, *args)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    @property
    def _worker_idle(self) -> bool:
        """The worker thread has finished everything handed to it: the connection is free
        to use on this thread."""
        return self._worker_sent == self._worker_done

    async def _txn(self, begin: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction opened with ``begin``: right here if
        that needs no waiting (``_txn_now``), else on the worker thread, which may wait for
        the lock."""
        if self._conn is None:
            await self.open()
        result = self._txn_now(begin, fn, args)
        if result is not NOT_NOW:
            return result  # type: ignore[return-value]

        def on_worker(conn: sqlite3.Connection, *a: Any) -> T:
            conn.execute(begin)
            return finish_txn(conn, fn, a)

        return await self._call(on_worker, *args)

    def _txn_now(self, begin: str, fn: Callable[..., T], args: Sequence[Any]) -> T | object:
        """The fast path: the transaction runs on the event loop's own thread, with no thread
        hop (which costs more than a small transaction itself). Taken only when the worker
        thread has nothing in hand (so the connection is never used from two threads at once)
        and the lock is free at once (the connection's busy timeout is 0 outside the worker).
        Otherwise nothing has happened and the result is ``NOT_NOW``."""
        if self._conn is None or not self._worker_idle:
            return NOT_NOW
        raw = raw_connection(self._conn)
        started = False
        try:
            raw.execute(begin)
            started = True
            return finish_txn(raw, fn, args)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.OperationalError as exc:
            # Busy: at BEGIN (nothing ran) or, for a read, anywhere (reads change
            # nothing, so running them again is safe). Then wait on the worker.
            if not is_busy(exc) or (started and begin != "BEGIN"):
                raise self._translate(exc) from exc
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        return NOT_NOW

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one read snapshot."""
        return await self._txn("BEGIN", fn, *args)

    async def check_health(self) -> None:
        """The whole-file check a connection's first write makes (``health.quick_check``),
        now: a runner asks it before its loop, so that a damaged file stops it with one line
        instead of an outage it would wait out forever. CorruptDatabaseError if damaged."""
        if not self._checked:
            await self._call(health.quick_check, self.db_path)
            self._checked = True

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` as one write transaction (for the engine's own modules)."""
        return await self._write(fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any, check: bool = True) -> T:
        """Run ``fn(conn, *args)`` as one write transaction, then wake other processes.
        The first write of a connection checks the whole file first (``check=False``: the
        kill switch, which must work on a damaged file as long as it can)."""
        if check:
            await self.check_health()
        if self._publishing is False:
            result, changed = await self._txn("BEGIN IMMEDIATE", counting_changes, fn, *args)
        else:
            (result, appended), changed = await self._txn(
                "BEGIN IMMEDIATE", counting_changes, audit.noting, fn, *args
            )
            self._observe(appended)
        if changed:
            self._committed()
        return result

    async def _cycle(self, fn: Callable[..., T], *args: Any, alone: bool = False) -> T:
        """A runner cycle's transaction (runner_cycle.py): an ordinary write here; on
        PostgreSQL, one that runs beside other runners' cycles unless ``alone`` says it
        will need the exclusive lock anyway (pg/store.py)."""
        return await self._write(fn, *args)

    def _write_now(self, fn: Callable[..., T], *args: Any) -> T | object:
        """``_write`` if it can run right here without waiting, else ``NOT_NOW``."""
        if not self._checked:
            return NOT_NOW
        noting = self._publishing is not False
        if noting:
            done = self._txn_now("BEGIN IMMEDIATE", counting_changes, (audit.noting, fn, *args))
        else:
            done = self._txn_now("BEGIN IMMEDIATE", counting_changes, (fn, *args))
        if done is NOT_NOW:
            return NOT_NOW
        result, changed = done  # type: ignore[misc]
        if noting:
            result, appended = result
            self._observe(appended)
        if changed:
            self._committed()
        return result

    def _observe(self, appended: audit.Appended | None) -> None:
        """Tell the publisher what a committed write appended, starting it on the first."""
        if appended is None:
            return
        if self._publishing is None:
            self.start_audit_publisher()
        if self.audit_publisher is not None:
            self.audit_publisher.observe(*appended)  # after COMMIT: it never blocks or raises

    def start_audit_publisher(self) -> None:
        """Start publishing checkpoints now, if configured (the dashboard does at once, to
        show the last checkpoint in its header); a no-op once decided."""
        if self._publishing is not None or self._conn is None:
            return
        from operator_core.anchor.runtime import start_publisher  # the signing code, now

        self.audit_publisher = start_publisher(self._origin, self.db_path)
        self._publishing = self.audit_publisher is not None

    def _committed(self) -> None:
        self._notifier.notify()
        self._checkpointer.committed()

    def poke_listeners(self) -> None:
        """Wake every runner and dashboard on this database now (the kill file was written)."""
        self._notifier.notify()

    def listener(self) -> Waker:
        """A waiter woken by other processes' commits (``start`` it inside the loop)."""
        return Listener(self.db_path)

    def poll_seconds(self) -> float:
        """How often waiters poll ``data_version`` between wake-ups, by default."""
        return 0.5

    def set_listener_name(self, name: str | None) -> None:
        """Skip poking our own listener (a process does not wake itself)."""
        self._notifier.own_name = name

    def _now(self) -> str:
        return self.clock.now_text()

    # ------------------------------------------------------------------ change detection

    async def data_version(self) -> int:
        """Changes whenever another connection commits (cheap: no table read)."""

        def fn(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

        # Takes no lock, so it never waits: right here when the worker thread is idle (the
        # runner and the dashboard poll it while idle; a thread hop would cost more).
        if self._conn is not None and self._worker_idle:
            try:
                return fn(raw_connection(self._conn))
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
        return await self._call(fn)
