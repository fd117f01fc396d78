"""A screen that reads again while it is shown, only when the database may have changed:
another connection's commit (``PRAGMA data_version``, one cheap read a second) or a write
of ours (``changed``: our own commits leave our connection's data_version as it was).

The dashboard's follower (``operator_tui.follow``) keeps its own watcher; these screens
poll instead, so they never take a change the dashboard has not read yet.
"""

from __future__ import annotations

import asyncio
import contextlib

from operator_core.db.actions import ActionDB
from operator_core.errors import OperatorError
from textual import work
from textual.screen import Screen

POLL_INTERVAL = 1.0


class PolledScreen(Screen[None]):
    def __init__(self, db: ActionDB, poll_interval: float = POLL_INTERVAL) -> None:
        super().__init__()
        self._db = db
        self._poll_interval = poll_interval
        self._dirty = True
        self._seen: int | None = None
        self._wake = asyncio.Event()
        self.loaded = asyncio.Event()
        """Set once the first read is shown (tests and screenshots wait for it)."""
        self.reads = 0

    def on_mount(self) -> None:
        self._poll()

    def on_screen_resume(self) -> None:
        """Back on top (a dialog or a detail view closed): read now if anything changed."""
        self._wake.set()

    def changed(self) -> None:
        """We wrote: read again now."""
        self._dirty = True
        self._wake.set()

    async def reload(self) -> None:
        """Read and show (overridden)."""
        raise NotImplementedError

    @work(exclusive=True, group="poll")
    async def _poll(self) -> None:
        while True:
            if self.is_current:
                try:
                    version = await self._db.data_version()
                    if self._dirty or version != self._seen:
                        self._dirty, self._seen = False, version
                        await self.reload()
                        self.reads += 1
                except OperatorError as exc:
                    self._dirty = True  # read again at the next turn
                    self.notify(
                        str(exc), title="Cannot read the database", severity="error", markup=False
                    )
                self.loaded.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()
