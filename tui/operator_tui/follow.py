"""Following the database: read what the dashboard shows when it may have changed (or a
new minute has begun), and post what was read to the app as a message.

One exclusive worker runs ``Follower.follow``: it re-reads only when the ChangeWatcher says
something changed, never overlaps itself, and skips while a dialog is open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from operator_core.clock import Clock
from operator_core.db.actions import ActionDB
from operator_core.errors import OperatorError
from textual.app import App
from textual.message import Message
from textual.screen import ModalScreen, Screen

from operator_tui import data as dashboard_data
from operator_tui.data import DashboardData, Target
from operator_tui.live import ChangeWatcher


class DashboardRead(Message):
    """Everything the dashboard shows, read after the database changed."""

    def __init__(self, data: DashboardData, before: Target | None) -> None:
        super().__init__()
        self.data = data
        self.before = before
        """After another process's change: the row selected before the read."""


class MinuteRead(Message):
    """A new minute and nothing written: the same rows, the activity per minute re-read."""

    def __init__(self, data: DashboardData) -> None:
        super().__init__()
        self.data = data


class ReadFailed(Message):
    def __init__(self, error: OperatorError) -> None:
        super().__init__()
        self.error = error


class Follower:
    """Reads through ActionDB's bounded reads (``operator_tui.data``), and remembers what it
    read last: the rows (a new minute re-reads only the activity) and the newest audit
    event (the event tail is read incrementally)."""

    def __init__(
        self,
        app: App[Any],
        db: ActionDB,
        watcher: ChangeWatcher,
        clock: Clock,
        selected: Callable[[], Target | None],
    ) -> None:
        self._app = app
        self._db = db
        self._watcher = watcher
        self._clock = clock
        self._selected = selected
        self.last: DashboardData | None = None
        self.rows_current = False
        """The rows read last are those of the last database change (no read failed since)."""
        self.last_event_id = 0

    async def read(self, rows: int = dashboard_data.ROW_LIMIT) -> DashboardData | OperatorError:
        """Everything the dashboard shows, or why it could not be read. ``rows``: fewer for
        the first frame (``dashboard_data.read``); the rest are read when ``follow`` starts."""
        try:
            loaded = await dashboard_data.load(self._db, self.last_event_id, rows)
        except OperatorError as exc:
            self.rows_current = False
            return exc
        self.rows_current = not loaded.partial
        self.last = loaded
        self.last_event_id = max((e.id for e in loaded.events), default=self.last_event_id)
        return loaded

    async def follow(self) -> None:
        minute = None
        if self.rows_current and self.last is not None:
            minute = self.last.loaded_at.replace(second=0, microsecond=0)
        while True:
            top = self._top_screen()
            if top is None or not self._app.is_running:
                return  # shutting down: the screens are gone before this worker is
            if not isinstance(top, ModalScreen):
                now_minute = self._clock.now().replace(second=0, microsecond=0)
                changed = await self._watcher.take_change()
                if changed or now_minute != minute:
                    minute = now_minute
                    if changed or not self.rows_current:
                        await self._refresh(external=self._watcher.external)
                    else:
                        await self._next_minute()
            await self._watcher.wait()

    async def _refresh(self, external: bool) -> None:
        """After another process's change, the row selected before the read goes with it
        (the app warns if that row left the list and the cursor moved)."""
        before = self._selected() if external else None
        read = await self.read()
        if isinstance(read, OperatorError):
            self._app.post_message(ReadFailed(read))
        else:
            self._app.post_message(DashboardRead(read, before))

    async def _next_minute(self) -> None:
        assert self.last is not None
        try:
            loaded = await dashboard_data.next_minute(self._db, self.last)
        except OperatorError as exc:
            self._app.post_message(ReadFailed(exc))
            return
        self.last = loaded
        self._app.post_message(MinuteRead(loaded))

    def _top_screen(self) -> Screen[Any] | None:
        """The screen on top, or None once the app has begun to shut down."""
        try:
            return self._app.screen_stack[-1]
        except (IndexError, KeyError):
            return None
