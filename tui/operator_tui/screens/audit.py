"""The Audit view: the audit log as a log an engineer reads during an incident. Newest at the
bottom, followed while the cursor is on the last row; moved back, it stays put and says how
many new events wait (``paused · 12 new``), and the last row follows again. ``/`` filters by
actor, event type, action or any word (``actor:alice type:failed restart``); enter opens the
event's action (or workflow), ``w`` its workflow; reaching the first row reads older events.

Every read is one bounded page through ``operator_core.db.audit_view`` (keyset on the audit
id, never OFFSET), on the database's thread: as fast at a million events as at ten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from operator_core.db import audit_view
from operator_core.db.actions import ActionDB
from operator_core.db.audit_view import AuditFilter, Entry
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
from operator_tui.panes.audit import AuditTable, workflow_of
from operator_tui.widgets.filter_bar import FilterBar
from operator_tui.widgets.key_footer import KeyFooter

FILTER_PAUSE = 0.15
"""Seconds of no typing before a filter reads (each keystroke would otherwise read)."""
KEEP = 2_000
"""Events kept while following: the oldest go (and are read again on the way back up)."""


class AuditScreen(Screen[None]):
    FOLLOWS_DASHBOARD = True
    """The app calls ``reload`` after each read of the dashboard's data."""

    BINDINGS = [
        Binding("escape", "close", "Back", key_display="esc"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("w", "workflow", "Workflow"),
        *GOTO,
    ]

    def __init__(self, db: ActionDB, begin: Callable[[], Hold]) -> None:
        """``begin``: hold the keys typed until what a key opens is ready (the app's
        ``KeyHold.begin``)."""
        super().__init__(id="audit")
        self._db = db
        self._begin = begin
        self._entries: list[Entry] = []
        self._older: int | None = None
        self._seen = 0
        """The highest id read into the list: newer events are read after it."""
        self._counted = 0
        """The highest id counted while paused."""
        self._lock = asyncio.Lock()
        self.typed = ""
        self.filter = audit_view.EVERYTHING
        self.waiting = 0
        """Matching events come since the cursor left the last row."""
        self.loaded = asyncio.Event()
        """Set each time a read has been shown (tests and the benchmark wait on it)."""
        self._gone = False

    def compose(self) -> ComposeResult:
        yield FilterBar(id="audit-filter")
        yield AuditTable(id="audit-table")
        yield KeyFooter()

    def on_mount(self) -> None:
        bar = self.query_one(FilterBar)
        bar.display = False
        bar.placeholder = "actor:NAME type:EVENT action:NAME or any word · enter keeps it"
        self.set_focus(self.table)
        self._read_latest()

    def on_unmount(self) -> None:
        self._gone = True

    @property
    def table(self) -> AuditTable:
        return self.query_one(AuditTable)

    @property
    def following(self) -> bool:
        return self.table.at_end

    def current_target(self) -> Target | None:
        return self.table.selected_target()

    # ------------------------------------------------------------------ reading

    async def _query(self, fn: Callable[..., Any], *args: object) -> Any:
        """``fn(conn, *args)`` in one read; an error is said, and gives None. None too once
        the view is gone: a read begun after the app closed the database would open it again
        (``ActionDB._call``), and leave its thread behind."""
        if self._gone:
            return None
        try:
            return await self._db.snapshot(lambda snap: snap.query(fn, *args))
        except OperatorError as exc:
            self.app.notify(
                str(exc), title="Cannot read the audit log", severity="error", markup=False
            )
            return None

    @work(exclusive=True, group="audit-latest")
    async def _read_latest(self, pause: float = 0.0) -> None:
        """The newest events (as many as the screen shows: older ones are read on the way
        up), followed from here."""
        if pause:
            await asyncio.sleep(pause)
        f = self.filter
        limit = self._screenful()
        async with self._lock:
            page = await self._query(audit_view.latest, f, limit, True)
            if page is None:
                return
            self._entries = page.items
            self._older = page.older
            self._seen = self._counted = page.seen
            self.waiting = 0
            self._show(to_end=True)
            if self._filling:
                self._read_older()
        self.loaded.set()

    @work(exclusive=True, group="audit-older")
    async def _read_older(self) -> None:
        async with self._lock:
            if self._older is None:
                return
            page = await self._query(
                audit_view.older, self._older, self.filter, audit_view.PAGE, True
            )
            if page is None:
                return
            self._entries = [*page.items, *self._entries]
            self._older = page.older
            self._show(to_end=False)
            if self._filling:
                self.call_later(self._read_older)
        self.loaded.set()

    def _screenful(self) -> int:
        return max(self.app.size.height, 20)

    @property
    def _filling(self) -> bool:
        """Fewer events than a screen holds, and older ones may match: a rare filter. Each
        read walks a bounded stretch of the log, and the next goes on up by itself (no key
        would ask for it: the cursor has not moved)."""
        return self._older is not None and len(self._entries) < self._screenful()

    @work(exclusive=True, group="audit-newer")
    async def _read_newer(self) -> None:
        """Following: the new events, appended. Paused: only counted."""
        async with self._lock:
            if not self.following:
                counted = await self._query(audit_view.count_newer, self._counted, self.filter)
                if counted is not None:
                    self.waiting += counted.count
                    self._counted = counted.seen
                    self._say_state()
                    if counted.more:
                        self.call_later(self._read_newer)
                return
            if self.waiting > audit_view.PAGE:  # more than a page came: start at the newest
                self._read_latest()
                return
            fresh = await self._query(
                audit_view.newer, self._seen, self.filter, audit_view.PAGE, True
            )
            if fresh is None:
                return
            self._seen = self._counted = fresh.seen
            self.waiting = 0
            if fresh.items:
                self._entries += fresh.items
                if len(self._entries) > KEEP:
                    del self._entries[: len(self._entries) - KEEP]
                    self._older = self._entries[0].event.id
                self._show(to_end=True)
            else:
                self._say_state()
            if fresh.more:
                self.call_later(self._read_newer)
        self.loaded.set()

    def _show(self, to_end: bool) -> None:
        table = self.table
        table.filter_note = self.typed
        table.show_entries(self._entries)
        if to_end:
            table.go_to_end()
        self._say_state()

    def _say_state(self) -> None:
        """``following``, or ``paused · 12 new`` while the cursor is back from the end."""
        start = "" if self._older is not None else " · the start"
        if self._filling:
            start = " · reading older events…"
        state = "following" if self.following else f"paused · {self.waiting} new ↓"
        self.table.set_state(state + start)

    def reload(self) -> None:
        """The database changed: new events are read (or counted, while paused)."""
        self._read_newer()

    @on(DataTable.RowHighlighted, "#audit-table")
    def _moved(self, event: DataTable.RowHighlighted) -> None:
        table = self.table
        if table.cursor_row <= 0 and self._older is not None:
            self._read_older()
        if table.at_end and self.waiting:
            self._read_newer()  # back at the end: what waited is read, and followed
        self._say_state()

    # ------------------------------------------------------------------ keys

    def action_close(self) -> None:
        self.dismiss(None)

    def action_details(self) -> None:
        """enter: the event's action, else its workflow."""
        self._open(self.current_target(), "This event names no action or workflow.")

    def action_workflow(self) -> None:
        entry = self.table.selected_entry()
        target = workflow_of(entry) if entry is not None else None
        self._open(target, "This event's action is not part of a workflow.")

    def _open(self, target: Target | None, none: str) -> None:
        if target is None:
            self.app.notify(none, severity="warning")
            return
        self._begin()
        self.app.post_message(OpenDetails(target))

    @on(DataTable.RowSelected, "#audit-table")
    def _row_clicked(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_filter(self) -> None:
        """The keys typed right after ``/`` go into the bar (``operator_tui.key_hold``)."""
        hold = self._begin()
        bar = self.query_one(FilterBar)
        bar.display = True
        bar.value = self.typed
        bar.back_to = self.table
        self.set_focus(bar)
        hold.ready()

    def action_clear_filter(self) -> None:
        """Escape in the table: clears the filter if there is one, else goes back."""
        self.query_one(FilterBar).display = False
        if not self.typed:
            self.dismiss(None)
            return
        self._set_filter("", 0.0)

    def _set_filter(self, typed: str, pause: float) -> None:
        self.typed = typed
        self.filter = AuditFilter.parse(typed)
        self.loaded.clear()
        self.workers.cancel_group(self, "audit-older")
        self._read_latest(pause)

    @on(Input.Changed, "#audit-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        typed = event.value.strip()
        if typed != self.typed:
            self._set_filter(typed, FILTER_PAUSE)

    @on(Input.Submitted, "#audit-filter")
    def _filter_submitted(self) -> None:
        self.query_one(FilterBar).display = False
        self.set_focus(self.table)

    @on(FilterBar.Cleared)
    def _filter_cleared(self) -> None:
        """Escape in the bar: the filter is gone (its text was cleared), the view stays."""
        self.query_one(FilterBar).display = False
        self.set_focus(self.table)

    @on(FilterBar.Left)
    def _filter_left(self) -> None:
        self.query_one(FilterBar).display = False
