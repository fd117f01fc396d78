"""The History view: finished work, newest first. ``/`` searches action, parameters, proposer,
reason and error; enter opens the detail view (every attempt's exit code or HTTP status and
its output); reaching the last row reads the next page.

Every read is one page through ``operator_core.db.history`` (keyset, never OFFSET), on the
database's thread, so the view opens as fast at a million finished actions as at ten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from operator_core.db import history
from operator_core.db.actions import ActionDB
from operator_core.db.history import Finished, HistoryPage
from operator_core.errors import OperatorError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Input

from operator_tui.data import Target
from operator_tui.goto import GOTO
from operator_tui.key_hold import Hold
from operator_tui.messages import OpenDetails
from operator_tui.panes.history import HistoryTable
from operator_tui.widgets.filter_bar import FilterBar
from operator_tui.widgets.key_footer import KeyFooter

SEARCH_PAUSE = 0.15
"""Seconds of no typing before a search reads (each keystroke would otherwise read)."""


class HistoryScreen(Screen[None]):
    FOLLOWS_DASHBOARD = True
    """The app calls ``reload`` after each read of the dashboard's data."""

    BINDINGS = [
        Binding("escape", "close", "Back", key_display="esc"),
        Binding("slash", "search", "Search", key_display="/"),
        *GOTO,
    ]

    def __init__(self, db: ActionDB, begin: Callable[[], Hold]) -> None:
        """``begin``: hold the keys typed until what a key opens is ready (the app's
        ``KeyHold.begin``)."""
        super().__init__(id="history")
        self._db = db
        self._begin = begin
        self._items: list[Finished] = []
        self._next: tuple[str, int] | None = None
        self.needle = ""
        self.loaded = asyncio.Event()
        """Set each time a read has been shown (tests and the benchmark wait on it)."""

    def compose(self) -> ComposeResult:
        yield FilterBar(id="history-search")
        yield HistoryTable(id="history-table")
        yield KeyFooter()

    def on_mount(self) -> None:
        bar = self.query_one(FilterBar)
        bar.display = False
        bar.placeholder = "search action, parameters, proposer, reason, error · enter keeps it"
        self.set_focus(self.table)
        self._read(reset=True)

    @property
    def table(self) -> HistoryTable:
        return self.query_one(HistoryTable)

    def current_target(self) -> Target | None:
        return self.table.selected_target()

    # ------------------------------------------------------------------ reading

    @work(exclusive=True, group="history")
    async def _read(self, reset: bool, pause: float = 0.0) -> None:
        """The first page (``reset``) or the next one, appended."""
        if pause:
            await asyncio.sleep(pause)
        below = history.TOP if reset else self._next
        if below is None:
            return
        needle = self.needle
        try:
            page: HistoryPage = await self._db.snapshot(
                lambda snap: snap.query(history.page, below, history.PAGE, needle, True)
            )
        except OperatorError as exc:
            self.app.notify(
                str(exc), title="Cannot read the history", severity="error", markup=False
            )
            return
        self._items = page.items if reset else [*self._items, *page.items]
        self._next = page.next
        self.table.show_items(self._items, page.next is not None, needle)
        if reset:
            self.table.move_cursor(row=0, animate=False)
        self.loaded.set()

    @on(DataTable.RowHighlighted, "#history-table")
    def _near_the_end(self, event: DataTable.RowHighlighted) -> None:
        if self._next is not None and event.cursor_row >= self.table.row_count - 1:
            self._read(reset=False)

    def reload(self) -> None:
        """The database changed: read the first page again (as the dashboard follows it)."""
        if self.table.cursor_row <= 0:
            self._read(reset=True)

    # ------------------------------------------------------------------ keys

    def action_close(self) -> None:
        self.dismiss(None)

    def action_details(self) -> None:
        target = self.current_target()
        if target is None:
            self.app.notify("Nothing selected.", severity="warning")
            return
        self._begin()
        self.app.post_message(OpenDetails(target))

    @on(DataTable.RowSelected, "#history-table")
    def _row_clicked(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_search(self) -> None:
        """The keys typed right after ``/`` go into the bar (``operator_tui.key_hold``)."""
        hold = self._begin()
        bar = self.query_one(FilterBar)
        bar.display = True
        bar.value = self.needle
        bar.back_to = self.table
        self.set_focus(bar)
        hold.ready()

    def action_clear_filter(self) -> None:
        """Escape in the table: clears the search if there is one, else goes back."""
        self.query_one(FilterBar).display = False
        if not self.needle:
            self.dismiss(None)
            return
        self.needle = ""
        self.loaded.clear()
        self._read(reset=True)

    @on(Input.Changed, "#history-search")
    def _search_changed(self, event: Input.Changed) -> None:
        needle = event.value.strip()
        if needle != self.needle:
            self.needle = needle
            self.loaded.clear()
            self._read(reset=True, pause=SEARCH_PAUSE)

    @on(Input.Submitted, "#history-search")
    def _search_submitted(self) -> None:
        self.query_one(FilterBar).display = False
        self.set_focus(self.table)

    @on(FilterBar.Cleared)
    def _search_cleared(self) -> None:
        """Escape in the bar: the search is gone (its text was cleared), the view stays."""
        self.query_one(FilterBar).display = False
        self.set_focus(self.table)

    @on(FilterBar.Left)
    def _search_left(self) -> None:
        self.query_one(FilterBar).display = False
