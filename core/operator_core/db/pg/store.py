"""``Store`` on PostgreSQL: the same operations, run by ``PgDatabase``.

``PgStore`` keeps Store's own write path (``_write``: audit noting, change counting) and
replaces only what touches aiosqlite: a transaction runs on PgDatabase's thread (``_txn``),
there is no run-it-right-here fast path (``_txn_now``, ``_write_now``), no whole-file
check, no WAL checkpoints and no file-based pokes: wake-ups are LISTEN/NOTIFY (every
changing write transaction NOTIFYs at its COMMIT, ``PgDatabase.run_txn``; waiters get a
``PgListener`` from ``listener``; ``poke_listeners`` wakes every host at once, for the kill
switch; pg/listen.py). The kill switch is the safety_state row (killswitch.py), not a
file. ``PgActionDB`` is ``ActionDB`` on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

from operator_core.clock import Clock
from operator_core.db import audit
from operator_core.db.attempts import RunnerOps
from operator_core.db.budget_ops import BudgetOps
from operator_core.db.compat import Compat
from operator_core.db.connection import NOT_NOW, Store, counting_changes
from operator_core.db.leases import LeaseOps
from operator_core.db.pg import append, listen
from operator_core.db.pg.connection import PgDatabase
from operator_core.db.pg.killswitch import PendingPull, RowKillSwitch
from operator_core.db.pg.txn import BEGIN_CYCLE, BEGIN_READ, BEGIN_WRITE
from operator_core.db.proposals import ProposalOps
from operator_core.db.reads import Reads
from operator_core.db.safety import SafetyOps
from operator_core.db.url import NOWHERE
from operator_core.db.workflows import WorkflowOps

T = TypeVar("T")

# The audit chain's highest id (the counter's one row): moves with every state change.
DATA_VERSION_SQL = "SELECT last_id FROM audit_sequence WHERE id = 1"

# The chain's head, for the checkpoint publisher (the primary key's last row).
HEAD_SQL = "SELECT id, hash FROM action_audit_log ORDER BY id DESC LIMIT 1"

# The database's origin, named in its audit checkpoints (the table's one row).
ORIGIN_SQL = "SELECT origin FROM audit_origin WHERE id = 1"


class PgStore(Store):
    """One PostgreSQL connection and the ways to run a function on it."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        create: bool = True,
        read_only: bool = False,
        **_sqlite_only: Any,
    ) -> None:
        # No file is made, read or locked: the path is a stand-in (see url.NOWHERE).
        super().__init__(NOWHERE, clock=clock, create=create, read_only=read_only)
        self.url = url
        # The safety_state row, not a file, is the kill switch every host reads (killswitch.py).
        self.kill_switch_row = RowKillSwitch(url, lock_timeout=self._busy_timeout)
        self._pg = PgDatabase(
            url,
            lock_timeout=self._busy_timeout,
            kill_file=PendingPull(self.kill_switch_row),  # type: ignore[arg-type]
        )
        self.kill_file = self.kill_switch_row  # type: ignore[assignment]
        self._checked = True  # no whole-file check: the server keeps its own pages
        self._head_db: PgDatabase | None = None  # the checkpoint publisher's (its thread's)
        self._open = False

    async def open(self) -> Self:
        if self._open:
            return self
        await self._pg.open(migrate=self._create)
        row = await self._pg.read(lambda conn: conn.execute(ORIGIN_SQL).fetchone())
        self._origin = row[0] if row else None
        self._open = True
        return self

    async def close(self) -> None:
        self._open = False
        await self.kill_switch_row.close()
        await self._pg.close()
        await super().close()  # stops the publisher, whose connection then closes
        if self._head_db is not None:
            self._head_db.close_sync()
            self._head_db = None

    @property
    def is_open(self) -> bool:
        return self._open

    async def _txn(self, begin: str, fn: Callable[..., T], *args: Any) -> T:
        if not self._open:
            await self.open()
        if begin == "BEGIN":
            return await self._pg.read(fn, *args)
        if begin == BEGIN_CYCLE:
            return await self._pg.cycle(fn, *args)
        return await self._pg.write(fn, *args)

    async def _cycle(self, fn: Callable[..., T], *args: Any, alone: bool = False) -> T:
        """Store's ``_write`` as a runner cycle: the write lock shared, the cycle's events
        appended at its end (``audit.flushed``), before ``noting`` reads the head. ``alone``
        (a cycle known to need it, db/shared.py): the lock exclusive at once."""
        if alone:
            return await self._write(fn, *args)
        if self._publishing is False:
            result, _ = await self._txn(BEGIN_CYCLE, counting_changes, audit.flushed, fn, *args)
            return result
        (result, appended), _ = await self._txn(
            BEGIN_CYCLE, counting_changes, audit.noting, audit.flushed, fn, *args
        )
        self._observe(appended)
        return result

    def _txn_now(self, begin: str, fn: Callable[..., T], args: Sequence[Any]) -> T | object:
        return NOT_NOW

    def _write_now(self, fn: Callable[..., T], *args: Any) -> T | object:
        return NOT_NOW

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._open:
            await self.open()
        return await self._pg.call(fn, *args)

    async def check_health(self) -> None:
        return None

    def start_audit_publisher(self) -> None:
        """Signed checkpoints of the chain, as on SQLite (anchor/runtime.py); its thread reads
        the head other hosts appended on a connection of its own (one indexed row)."""
        if self._publishing is not None or not self._open:
            return
        from operator_core.anchor.runtime import start_publisher  # the signing code, now

        self._head_db = PgDatabase(self.url, application_name="operator checkpoints")
        self.audit_publisher = start_publisher(self._origin, self.db_path, self._read_head)
        self._publishing = self.audit_publisher is not None

    def _read_head(self) -> tuple[int, str] | None:
        """On the publisher's thread, the only one using ``_head_db``."""
        assert self._head_db is not None
        row = self._head_db.run_txn(BEGIN_READ, lambda conn: conn.execute(HEAD_SQL).fetchone())
        return (int(row[0]), str(row[1])) if row else None

    def _committed(self) -> None:
        pass  # the NOTIFY went with the COMMIT (PgDatabase.run_txn)

    def poke_listeners(self) -> None:
        """Wake every runner and dashboard on this database, on every host, now (the kill
        switch, before its database write): NOTIFY from a connection of its own, so a
        held write lock or a busy worker never delays it; returns at once."""
        listen.poke(self.url)

    def listener(self) -> listen.PgListener:
        """A waiter woken by other connections' commits (``OPERATOR_PG_LISTEN_URL`` says
        where it listens; ``off``: its ``start`` says False and the caller polls)."""
        return listen.PgListener(listen.listen_url(self.url), own_token=self._pg.token)

    def poll_seconds(self) -> float:
        """``OPERATOR_PG_POLL_SECONDS`` (0.5 s by default): the delay a missed NOTIFY costs."""
        return listen.poll_seconds()

    async def data_version(self) -> int:
        """Changes when an audited write commits (every state change appends to the chain):
        the poll fallback behind LISTEN/NOTIFY. Unlike SQLite's, it sees our own commits
        too, which costs one extra cycle, never a missed one. One statement in autocommit:
        one round trip, its own snapshot."""
        row = await self._pg.call(lambda conn: conn.execute(DATA_VERSION_SQL).fetchone())
        return int(row[0]) if row else 0


class PgActionDB(
    ProposalOps, WorkflowOps, RunnerOps, LeaseOps, SafetyOps, BudgetOps, Reads, Compat, PgStore
):
    """``ActionDB`` on PostgreSQL (the operations ported so far: docs/postgres.md)."""

    _store_proposal = staticmethod(append.store_proposal)


__all__ = ["BEGIN_READ", "BEGIN_WRITE", "PgActionDB", "PgStore"]
