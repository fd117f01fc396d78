"""The main screen: header, the five panes, the filter, the event tail, the footer.

Narrow terminals (under 120 columns) show one pane at a time with a tab strip; wider ones a
grid (Approvals across the top, two panes a row below). ``tab``/``shift+tab`` move between
panes in both layouts, ``1``-``5`` go straight to one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from operator_core.clock import Clock
from operator_core.db.running import InHand
from operator_core.model.views import AuditEventView
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Input

from operator_tui.data import DashboardData, Target
from operator_tui.goto import GOTO
from operator_tui.key_hold import KeyHold
from operator_tui.messages import OpenDetails
from operator_tui.panes import PANES, ApprovalsPane, PaneTable
from operator_tui.widgets.event_tail import EventTail
from operator_tui.widgets.filter_bar import FilterBar
from operator_tui.widgets.key_footer import KeyFooter
from operator_tui.widgets.pane_tabs import PaneTab
from operator_tui.widgets.status_header import StatusHeader

if TYPE_CHECKING:
    from operator_core.anchor.runtime import AnchorStatus


def _keys(queued: list[InHand]) -> list[int | None]:
    return [h.proposal.id for h in queued]


class DashboardScreen(Screen[None]):
    BINDINGS = [
        Binding("tab", "next_pane", "Next pane", show=False),
        Binding("shift+tab", "previous_pane", "Previous pane", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        *GOTO,
    ]

    def __init__(
        self,
        *,
        where: Path | str,
        approval_mode: bool,
        read_only: bool,
        clock: Clock,
        tick_interval: float,
        keys: KeyHold,
        first_show: Callable[[], None],
    ) -> None:
        """``where``: the database's path or redacted URL, for the header. ``keys``: the
        app's hold on keys typed while the filter or details open. ``first_show``: called
        once the screen is mounted, before its first frame, to fill it (a call, not a
        message: the first frame must not be drawn empty)."""
        super().__init__(id="dashboard")
        self.active = PANES[0][0]
        self.data: DashboardData | None = None
        self._resumed = False
        self._where = where
        self._approval_mode = approval_mode
        self._read_only = read_only
        self._clock = clock
        self._tick_interval = tick_interval
        self._keys = keys
        self._first_show = first_show

    def compose(self) -> ComposeResult:
        self._apply_breakpoints()
        yield StatusHeader(self._where, self._approval_mode, self._read_only, id="header")
        # The active pane and its tab are marked from the start: marked after they are
        # styled, each is styled again.
        with Horizontal(id="pane-tabs"):
            for pane_id, title, _ in PANES:
                tab = PaneTab(pane_id, title)
                yield tab.set_class(pane_id == self.active, "-active", update=False)
        sizes = self._pane_sizes()
        with Grid(id="panes"):
            for pane_id, _, cls in PANES:
                pane = cls(id=pane_id)
                pane.expect(*sizes[pane_id])
                yield pane.set_class(pane_id == self.active, "-active", update=False)
        # The filter bar is mounted when ``/`` first opens it (``action_filter``): the first
        # frame does not show it, and an Input is costly to style.
        yield EventTail(id="events")
        yield KeyFooter()

    def _apply_breakpoints(self) -> None:
        """The width classes (``-wide``, ``-narrow``) for the terminal's size, before the
        children are styled. Textual sets them on the first Resize, which arrives after the
        first frame: that frame was laid out narrow, then every pane laid out and drawn
        again."""
        points = (
            self.app.HORIZONTAL_BREAKPOINTS
            if self.HORIZONTAL_BREAKPOINTS is None
            else self.HORIZONTAL_BREAKPOINTS
        ) or []
        wanted = self._get_breakpoint_classes(self.app.size.width, points)
        self.update_classes({name: name in wanted for _, name in points}, animate=False)

    def _pane_sizes(self) -> dict[str, tuple[int, int]]:
        """Each pane's width inside its border and the rows it shows, as ``app.tcss`` lays
        them out for the terminal's size (``PaneTable.expect``): the header's three lines and
        the footer's one above and below, the event tail's twelve lines (wide) or six
        (narrow, under the tabs' one); wide, a grid of three rows (Approvals across the top,
        two panes a row below) split as Textual splits ``1fr`` rows; narrow, one pane. Exact
        while the header has its three lines and a pane has room for a row (it is given one
        at least); a taller header (the kill switch's banner) leaves the panes fewer rows than
        this, never more."""
        width, height = self.app.size
        if self.has_class("-wide"):
            grid = height - 3 - 12 - 1
            # A row's lines, less the pane's border and column header.
            top, middle, bottom = (
                max((grid * (i + 1)) // 3 - (grid * i) // 3 - 3, 1) for i in range(3)
            )
            left, right = width // 2 - 2, width - width // 2 - 2
            places = {"approvals": (width - 2, top), "running": (left, middle)}
            places |= {"workflows": (right, middle), "scheduled": (left, bottom)}
            places |= {"retries": (right, bottom)}
            return {pane_id: places[pane_id] for pane_id, _, _ in PANES}
        return {pane_id: (width - 2, max(height - 14, 1)) for pane_id, _, _ in PANES}

    def first_rows(self) -> int:
        """The most rows any pane shows in the first frame (before the screen is composed:
        what the first read reads of the long lists)."""
        self._apply_breakpoints()
        return max(rows for _, rows in self._pane_sizes().values())

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        """The first resume comes once every node was styled as it was mounted: Screen's own
        handler (called after this one) would style the whole tree again for nothing, before
        the first frame. Later resumes (back from a dialog) restyle as usual."""
        if not self._resumed:
            self._resumed = True
            event.refresh_styles = False

    def on_mount(self) -> None:
        self._activate(self.active)
        self.set_interval(self._tick_interval, self._tick)
        self._first_show()

    # ------------------------------------------------------------------ data

    def panes(self) -> list[PaneTable]:
        return [self.query_one(f"#{pane_id}", PaneTable) for pane_id, _, _ in PANES]

    @property
    def last_event_id(self) -> int:
        return self.query_one(EventTail).last_id

    def show(self, data: DashboardData, events: list[AuditEventView]) -> None:
        """Apply freshly loaded data to every pane, the header and the event tail."""
        self.data = data
        self.query_one(EventTail).add(events)
        now = data.loaded_at
        counts = {}
        for pane in self.panes():
            pane.show(data, now)
            counts[pane.TITLE.lower()] = pane.item_count
            self.query_one(f"#tab-{pane.id}", PaneTab).set_count(pane.item_count)
        self.query_one(StatusHeader).show(data, counts)
        self.refresh_bindings()  # the safety mode and the rows' states decide the keys offered

    def show_anchor(self, anchor: AnchorStatus | None) -> None:
        """The audit checkpoints' state in the header, between reads."""
        self.query_one(StatusHeader).show_anchor(anchor)

    def set_risks(self, risks: dict[str, str]) -> None:
        """Each action's risk, once the subject's definitions are read (after the first
        frame): the approvals pane shows it."""
        self.query_one("#approvals", ApprovalsPane).set_risks(risks)

    def show_minute(self, data: DashboardData) -> None:
        """A new minute with nothing written: the header's time and activity. The panes' rows
        are the same, and every column that moves with the clock is a ticking one, which
        ``_tick`` brings up to date row by row (re-filling every pane here redrew each table
        whole, once a minute, for times that had mostly not changed)."""
        before, self.data = self.data, data
        if before is None or _keys(before.queued) != _keys(data.queued):  # work came due
            running = self.query_one("#running", PaneTable)
            running.show(data, data.loaded_at)
            self.query_one("#tab-running", PaneTab).set_count(running.item_count)
        counts = {pane.TITLE.lower(): pane.item_count for pane in self.panes()}
        self.query_one(StatusHeader).show(data, counts)

    def _tick(self) -> None:
        """Countdowns and ages move with the clock, every ``tick_interval``; nothing is
        re-read."""
        if self.data is None:
            return
        now = self._clock.now()
        for pane in self.panes():
            pane.tick(now)
        self.query_one(StatusHeader).tick(now)

    # ------------------------------------------------------------------ selection

    @property
    def active_pane(self) -> PaneTable:
        return self.query_one(f"#{self.active}", PaneTable)

    @property
    def filter_bar(self) -> FilterBar:
        """The ``/`` bar (mounted when first opened)."""
        return self.query_one(FilterBar)

    def _opened_bar(self) -> FilterBar | None:
        bars = self.query(FilterBar)
        return bars.first() if bars else None

    def current_target(self) -> Target | None:
        return self.active_pane.selected_target()

    def marked_targets(self) -> list[Target]:
        return list(self.active_pane.marked.values())

    def clear_marks(self) -> None:
        self.active_pane.clear_marks()

    def _activate(self, pane_id: str, focus: bool = True) -> None:
        self.active = pane_id
        for pid, _, _ in PANES:
            self.query_one(f"#{pid}").set_class(pid == pane_id, "-active")
            self.query_one(f"#tab-{pid}").set_class(pid == pane_id, "-active")
        if focus:
            # At once, not after the next message (``focus()``): a ``/`` in the same burst as
            # a tab would give the filter bar the focus, then lose it to this pane.
            self.set_focus(self.active_pane)

    def _step(self, delta: int) -> None:
        ids = [pane_id for pane_id, _, _ in PANES]
        self._activate(ids[(ids.index(self.active) + delta) % len(ids)])

    def action_pane(self, pane_id: str) -> None:
        self._activate(pane_id)

    def action_next_pane(self) -> None:
        self._step(1)

    def action_previous_pane(self) -> None:
        self._step(-1)

    @on(PaneTab.Chosen)
    def _tab_chosen(self, message: PaneTab.Chosen) -> None:
        self._activate(message.pane_id)

    def on_descendant_focus(self, event: object) -> None:
        focused = self.focused
        if isinstance(focused, PaneTable) and focused.id != self.active:
            self._activate(focused.id or self.active, focus=False)

    # ------------------------------------------------------------------ details

    def action_details(self) -> None:
        target = self.current_target()
        if target is None:
            self.app.notify("Nothing selected in this pane.", severity="warning")
            return
        # Held from this key, as for any screen pushed (``operator_tui.key_hold``).
        self._keys.begin()
        self.app.post_message(OpenDetails(target))

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        """The keys offered depend on the selected row (approve on an executing step is
        not)."""
        self.refresh_bindings()

    @on(DataTable.RowSelected)
    def _row_clicked(self, event: DataTable.RowSelected) -> None:
        """A click on the highlighted row opens it (enter is bound to details directly)."""
        event.stop()
        self.action_details()

    # ------------------------------------------------------------------ filter

    async def action_filter(self) -> None:
        """The keys typed right after ``/`` go into the bar (``operator_tui.key_hold``),
        mounted above the event tail when first opened."""
        hold = self._keys.begin()
        bar = self._opened_bar()
        if bar is None:
            bar = FilterBar(id="filter")
            await self.mount(bar, before=self.query_one(EventTail))
        bar.display = True
        bar.value = self.active_pane.filter_text
        bar.back_to = self.active_pane
        self.set_focus(bar)
        hold.ready()

    def action_clear_filter(self) -> None:
        self.active_pane.set_filter("")
        self._close_filter_bar()

    def _close_filter_bar(self) -> None:
        bar = self._opened_bar()
        if bar is not None:
            bar.display = False

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.active_pane.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._close_filter_bar()
        self.set_focus(self.active_pane)

    @on(FilterBar.Cleared)
    def _filter_cleared(self) -> None:
        self.action_clear_filter()
        self.set_focus(self.active_pane)

    @on(FilterBar.Left)
    def _filter_left(self) -> None:
        """The focus left the bar (tab, a click on a pane): it closes, keeping the filter, so
        that keys are never taken by the dashboard while the bar is open."""
        self._close_filter_bar()
