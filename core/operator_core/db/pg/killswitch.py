"""The kill switch of a PostgreSQL database: its ``safety_state`` row, which every host reads.

On SQLite a kill file beside the database is the fast path and the row the record; hosts
sharing a PostgreSQL server share no directory, so the row is the switch. ``RowKillSwitch``
answers ``KillFile``'s questions (``engaged``, ``read``: no I/O, as a runner asks them every
cycle and from a timer) from the row as last read. A runner ``watch``es it: the row is read
again every interval on a connection of its own, so a wait for the write lock on the store's
connection never delays it, and an engagement calls the runner back at once. Engaging and
releasing it are the database's own transactions (``kill_switch``, ``set_safety_mode``).
``engage`` comes first, as SQLite's kill file does: the row alone, set to OBSERVE without the
write lock (so a held lock never delays it) and marked not yet recorded, which the pull's own
transaction, or the first runner or ``resume`` that can write, then records
(safety.record_row_pull). ``kill_changed()`` reads the row now (LISTEN/NOTIFY's hook).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from operator_core.clock import from_db, to_db
from operator_core.db.killfile import KILL_REASON, PENDING_REASON, KillNotice
from operator_core.db.pg.connection import PgDatabase
from operator_core.errors import DatabaseError

log = logging.getLogger(__name__)

# The safety mode, and who set it when and why (the primary key's one row).
KILL_STATE_SQL = "SELECT mode, changed_at, changed_by, reason FROM safety_state WHERE id = 1"

# Engage the switch in the row alone, unless it is on already (the primary key's one row).
ENGAGE_SQL = """
UPDATE safety_state SET mode = 'observe', changed_at = ?, changed_by = ?, reason = ?
WHERE id = 1 AND NOT (mode = 'observe' AND reason LIKE 'kill switch%')
"""


def notice_of(row: Any) -> KillNotice | None:
    """The kill switch a safety_state row records, if it does: OBSERVE set by the kill switch
    (also its damaged-database form). OBSERVE set by hand stops claims, not running work, as
    on SQLite, where it writes no kill file."""
    if row is None or row[0] != "observe" or not str(row[3] or "").startswith(KILL_REASON):
        return None
    return KillNotice(actor=str(row[2] or "unknown"), engaged_at=from_db(row[1]), reason=row[3])


class RowKillSwitch:
    """The kill switch of one PostgreSQL database, as its processes see it."""

    path = None
    """No file: callers that name the kill file (messages, ``status``) name none."""

    def __init__(self, url: str, *, lock_timeout: float = 5.0) -> None:
        self._db = PgDatabase(url, lock_timeout=lock_timeout, application_name="operator kill")
        self._notice: KillNotice | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    def engaged(self) -> bool:
        return self._notice is not None

    def read(self) -> KillNotice | None:
        return self._notice

    async def engage(self, actor: str, now: datetime) -> tuple[KillNotice, bool]:
        """Set OBSERVE in the row at once, outside any transaction and without the write
        lock (only a writer of this very row can delay it): (the notice, True). If the switch
        was on already: (that pull, False). Raises DatabaseError."""
        notice = KillNotice(actor, now, PENDING_REASON)

        def fn(conn: Any) -> Any:
            if conn.execute(ENGAGE_SQL, (to_db(now), actor, PENDING_REASON)).rowcount == 1:
                return None
            return conn.execute(KILL_STATE_SQL).fetchone()

        row = await self._db.call(fn)
        if row is None:
            self._notice = notice
            return notice, True
        self._notice = notice_of(row) or self._notice
        return self._notice or notice, False

    def clear(self) -> bool:
        """Nothing to remove: resuming rewrites the row itself (``set_safety_mode``)."""
        return False

    async def refresh(self) -> bool:
        """Read the row now; whether the switch is engaged. Raises DatabaseError."""
        row = await self._db.read(lambda conn: conn.execute(KILL_STATE_SQL).fetchone())
        self._notice = notice_of(row)
        return self._notice is not None

    @property
    def watching(self) -> bool:
        """Whether the row is read every interval (a runner): ``read`` is then fresh."""
        return self._task is not None

    def watch(self, interval: float, on_engaged: Callable[[], None]) -> None:
        """Read the row every ``interval`` seconds (and on ``kill_changed``) until ``unwatch``;
        call ``on_engaged`` each time it is read engaged."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._watch(interval, on_engaged), name="kill-watch")

    def kill_changed(self) -> None:
        """Another host may have engaged or released the switch: read the row now."""
        if self._wake is not None:
            self._wake.set()

    async def _watch(self, interval: float, on_engaged: Callable[[], None]) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                if await self.refresh():
                    on_engaged()
            except DatabaseError as exc:
                # The last state read stands; the runner's own calls report the outage.
                log.debug("kill switch: cannot read the safety state: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def unwatch(self) -> None:
        task, self._task, self._wake = self._task, None, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        await self.unwatch()
        await self._db.close()


class PendingPull:
    """What a PostgreSQL connection's writers ask of the kill switch
    (``safety.honour_kill_file``, as of SQLite's kill file): engaged only while a runner's
    watch last read the row holding a pull not yet recorded, which they then record. Nothing
    else is asked of it: the row itself, which every transaction reads, says OBSERVE, and a
    process that does not watch would be asking a stale memory."""

    path = None

    def __init__(self, switch: RowKillSwitch) -> None:
        self._switch = switch

    def engaged(self) -> bool:
        notice = self._switch.read()
        return self._switch.watching and notice is not None and notice.reason == PENDING_REASON

    def read(self) -> KillNotice | None:
        return self._switch.read()
