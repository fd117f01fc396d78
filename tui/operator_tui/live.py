"""When to re-read the database: only when something may have changed.

Another process's commit pokes our listener (near-instant: a socket poke on SQLite, a NOTIFY
on PostgreSQL); ``data_version``, polled every ``poll_interval`` as the fallback, tells for
sure. Our own writes do not change
our connection's data_version, so a mutation marks the watcher dirty instead.
"""

from __future__ import annotations

import asyncio
import contextlib

from operator_core.db.actions import ActionDB
from operator_core.db.url import NOWHERE
from operator_core.notify import Waker


class ChangeWatcher:
    def __init__(self, db: ActionDB, poll_interval: float | None = None) -> None:
        self._db = db
        # None: the database's default (0.5 s; OPERATOR_PG_POLL_SECONDS on PostgreSQL).
        self.poll_interval = poll_interval if poll_interval is not None else db.poll_seconds()
        self._listener: Waker | None = None
        self._wake = asyncio.Event()
        self._dirty = True
        self._seen: int | None = None
        self._postgres = db.db_path == NOWHERE
        """PostgreSQL: its counter (``PgStore.data_version``) moves with our own commits too."""
        self.external = False
        """The last change ``take_change`` reported came from another connection."""

    def start(self) -> None:
        """Listen for other processes' commits (call inside the running loop)."""
        listener = self._db.listener()
        # A poke sets the same event as our own writes: ``wait`` waits on one thing.
        listener.event = self._wake
        if listener.start():
            self._listener = listener
            self._db.set_listener_name(listener.name)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._db.set_listener_name(None)
            self._listener = None

    def mark_dirty(self) -> None:
        """We wrote (or want a re-read): refresh at the next turn, now."""
        self._dirty = True
        self._wake.set()

    async def take_change(self) -> bool:
        """True (once) if the database may have changed since the last time it said so."""
        version = await self._db.data_version()
        # On PostgreSQL a change seen while our own write awaits its re-read is taken as
        # ours: else our approval would read as another process's (``Mutations._moved``).
        ours = self._postgres and self._dirty
        self.external = self._seen is not None and version != self._seen and not ours
        changed = self._dirty or version != self._seen
        self._dirty = False
        self._seen = version
        return changed

    async def wait(self) -> None:
        """Until a poke, a mark_dirty, or the poll interval, whichever comes first. An idle
        dashboard runs this twice a second: one timer on the waiting task, no task of its
        own to start and cancel (each costs the event loop more turns)."""
        if not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
        self._wake.clear()
