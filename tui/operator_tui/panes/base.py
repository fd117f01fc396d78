"""A dashboard pane: a row-cursor DataTable updated in place by row key, with a filter.

Each pane turns the loaded data into ``Row`` values; ``show`` diffs them against what is on
screen (remove gone rows, update changed cells, add new rows, reorder only if needed), so
the cursor stays on the same item while the database changes underneath it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from itertools import islice
from typing import Any, ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import events
from textual.binding import Binding

from operator_tui.data import DashboardData, Target
from operator_tui.format import clip, plain, steady_for
from operator_tui.widgets.column_fit import fit
from operator_tui.widgets.fixed_table import FixedTable

EMPTY_KEY = "-empty-"

NAVIGATION = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    # DataTable's own home/end scroll sideways; here they go to the first and last row.
    Binding("g,home", "scroll_top", "First row", show=False),
    Binding("G,end", "scroll_bottom", "Last row", show=False),
]
"""vi's and less's keys beside the arrows, for every table of rows."""


class Row:
    """One row of a pane. ``cells`` and ``search`` are given as values or as functions of no
    arguments that make them, called once, when first needed: a pane's first fill shows only
    the rows the screen has room for, so the others are formatted after the first frame (and
    ``search`` only once a filter is typed)."""

    __slots__ = ("key", "target", "model", "_cells", "_search")

    def __init__(
        self,
        key: str,
        cells: tuple[RenderableType, ...] | Callable[[], tuple[RenderableType, ...]],
        target: Target | None,
        search: str | Callable[[], str],
        model: Any = None,
    ) -> None:
        self.key = key
        self.target = target
        self.model = model
        self._cells = cells
        self._search = search

    @property
    def cells(self) -> tuple[RenderableType, ...]:
        """First cell is the row's unique id as plain text (used to keep the order). A str
        cell is shown as it is (made a ``Text`` when it goes into the table, see ``_plain``)."""
        cells = self._cells
        if callable(cells):
            cells = self._cells = cells()
        return cells

    @property
    def search(self) -> str:
        search = self._search
        if callable(search):
            search = self._search = search()
        return search


def _plain(cell: RenderableType) -> RenderableType:
    """A str shown as it is, never read as markup: DataTable reads a str cell as Rich markup,
    and "[red]" or "[/]" in an agent's text would be eaten or restyle the row (say, text
    made invisible to the approver). Done as a cell goes into the table, so only the rows
    shown pay for it. A value longer than its column ends in an ellipsis, so a cut value
    never reads as the whole one."""
    text = plain(cell) if isinstance(cell, str) else cell
    if isinstance(text, Text) and text.overflow is None:
        text.overflow = "ellipsis"
    return text


class PaneTable(FixedTable):
    """Base of the four panes."""

    BINDINGS = [
        Binding("enter", "screen.details", "Details"),
        Binding("escape", "screen.clear_filter", "Clear filter", show=False),
        Binding("s", "cycle_sort", "Sort", show=False),
        Binding("space", "toggle_mark", "Mark", show=False),
        *NAVIGATION,
    ]

    SPAN_KEY = EMPTY_KEY  # "nothing here" across the row, whatever its first column's width
    TITLE: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[tuple[str, str, int], ...]] = ()
    """(key, label, width): the width each needs. Widths change only with the pane's, so
    columns never jump as rows come and go."""
    GROW: ClassVar[dict[str, int]] = {}
    """Column key → its share of the width the pane has beyond what the columns need (the
    text columns: parameters, reasons, errors)."""
    DROP: ClassVar[tuple[str, ...]] = ()
    """The columns left out, first to last, while the pane is too narrow for them all (their
    values stay in the detail view)."""
    TICKING: ClassVar[tuple[str, ...]] = ()
    """Columns recomputed every second from the clock (countdowns), without a DB read."""
    EMPTY: ClassVar[str] = "nothing here"
    SORTS: ClassVar[tuple[str, ...]] = ("age", "action")
    """The orders ``s`` cycles through; the first is the pane's own (``rows_for``'s)."""

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.filter_text = ""
        self._rows: list[Row] = []
        self._shown: dict[str, tuple[RenderableType, ...]] = {}
        self._by_key: dict[str, Row] = {}
        self._total = 0
        self._rest_pending = 0
        """Rows the first fill left for after the first frame."""
        self._to_come = 0
        """Rows not read yet: only the first frame's were (``DashboardData.partial``)."""
        self._end_wanted = False
        """End was pressed before every row was read: the cursor goes to the last when
        they are."""
        self._steady_until: dict[str, float] = {}
        """Row key → until when (epoch seconds) its ticking cells read the same."""
        self._column_indexes = {key: i for i, (key, _, _) in enumerate(self.COLUMNS)}
        self.sort_by = self.SORTS[0]
        self._unsorted: list[Row] = []
        self.marked: dict[str, Target] = {}
        """Row key → what it acts on, for the rows marked with space."""
        self.widths: dict[str, int] = {key: width for key, _, width in self.COLUMNS}
        """Column key → width, for the columns shown (see ``fit_columns``)."""
        self._first_rows: int | None = None
        """Rows the first fill shows before the first frame (None: the screen's height)."""

    def on_mount(self) -> None:
        self._add_columns()
        self.border_title = self.TITLE
        self._render_rows()

    def _add_columns(self) -> None:
        labels = {key: label for key, label, _ in self.COLUMNS}
        for key, width in self.widths.items():
            self.add_column(labels[key], key=key, width=width)

    def expect(self, width: int, rows: int) -> None:
        """Before it is laid out: the pane will be ``width`` cells wide inside its border and
        show ``rows`` rows. Its columns are fitted now and its first fill is that many rows:
        fitted only once laid out, a narrow pane's rows were all added twice, and a pane in
        the grid filled the whole screen's height of rows before its first frame."""
        self.fit_columns(width)
        self._first_rows = max(rows, 1)

    def on_resize(self, event: events.Resize) -> None:
        self.fit_columns(self.size.width)  # the event's size has the border in it

    def fit_columns(self, width: int) -> None:
        """The columns for a pane ``width`` cells wide (room kept for the vertical
        scrollbar, so its coming and going does not move them): the text columns take what
        is left, and the ones the pane can spare are left out when it is narrow."""
        room = width - self.styles.scrollbar_size_vertical
        widths = fit(self.COLUMNS, room, grow=self.GROW, drop=self.DROP, padding=self.cell_padding)
        if widths == self.widths:
            return
        same_columns = widths.keys() == self.widths.keys()
        self.widths = widths
        if not self.is_mounted:
            return  # its columns are added with these widths
        if same_columns:
            self.set_column_widths(widths)
            return
        # Columns come or go: the rows are added again, with the cells of those shown.
        cursor = self._cursor_key()
        self.clear(columns=True)
        self._shown = {}
        self._add_columns()
        self._render_rows(cursor)

    # ------------------------------------------------------------------ what subclasses say

    def rows_for(self, data: DashboardData, now: datetime) -> list[Row]:
        raise NotImplementedError

    def total(self, data: DashboardData) -> int:
        """How many items the pane has in the database (may exceed the rows read)."""
        raise NotImplementedError

    def listed(self, data: DashboardData) -> int:
        """How many rows the pane lists once every row it reads is read: more than
        ``rows_for`` gives while only the first frame's rows are read (``data.partial``)."""
        return len(self._unsorted)

    def tick_cells(self, row: Row, now: datetime) -> dict[str, RenderableType]:
        return {}

    def tick_times(self, row: Row) -> tuple[datetime | None, ...] | None:
        """The times the row's ticking cells count to or from (each shown through
        ``duration``), so a row far from any of them is not recomputed every second; ``()``
        if they do not move with the clock at all, None if unknown (recomputed every tick)."""
        return None

    # ------------------------------------------------------------------ updating

    def sort_key(self, row: Row, order: str) -> Any:
        """Where ``row`` goes in ``order`` (any order but the first): by action name."""
        model = getattr(row.model, "proposal", row.model)
        return (getattr(model, "action_name", None) or getattr(model, "name", "")).lower()

    def show(self, data: DashboardData, now: datetime) -> None:
        self._unsorted = self.rows_for(data, now)
        self._rows = self._ordered(self._unsorted)
        self._total = self.total(data)
        self._to_come = max(self.listed(data) - len(self._unsorted), 0)
        self._render_rows()

    def _ordered(self, rows: list[Row]) -> list[Row]:
        if self.sort_by == self.SORTS[0]:
            return rows
        return sorted(rows, key=lambda row: self.sort_key(row, self.sort_by))

    def action_cycle_sort(self) -> None:
        """``s``: the next order (the title says which, unless the pane's own)."""
        if len(self.SORTS) == 1:
            self.app.notify(f"{self.TITLE} has one order: {self.SORTS[0]}.", markup=False)
            return
        self.sort_by = self.SORTS[(self.SORTS.index(self.sort_by) + 1) % len(self.SORTS)]
        self._rows = self._ordered(self._unsorted)
        self._render_rows()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._render_rows()

    def tick(self, now: datetime) -> None:
        """Recompute the countdown cells of the rows on screen (hidden panes and rows
        scrolled out of view wait until they are shown: a refresh or the next tick after
        scrolling brings them up to date)."""
        if not self.TICKING or not self.display or not self.is_on_screen:
            return
        top = int(self.scroll_offset.y)
        bottom = top + max(self.size.height, 1)
        at = now.timestamp()
        steady = self._steady_until
        changed: list[tuple[str, str, RenderableType]] = []
        for key, row in islice(self._by_key.items(), max(top - 1, 0), bottom + 1):
            if steady.get(key, 0.0) > at:
                continue
            for column, value in self.tick_cells(row, now).items():
                index = self._column_index(column)
                shown = self._shown[key]
                if shown[index] != value:
                    self._shown[key] = shown[:index] + (value,) + shown[index + 1 :]
                    changed.append((key, column, value))
            times = self.tick_times(row)
            if times is not None:
                steady[key] = at + min(
                    (steady_for((t - now).total_seconds()) for t in times if t is not None),
                    default=math.inf,
                )
        if changed:
            self.update_cells_in_place((k, c, _plain(v)) for k, c, v in changed)

    @property
    def settled(self) -> bool:
        """No column-width or row-size work left for the next idle moment, and every row
        read (screenshots wait for this)."""
        return self.layout_settled and not self._rest_pending and not self._to_come

    def action_scroll_bottom(self) -> None:
        """End (``G``): the last row, also when pressed before the rows after the first
        frame's are read (the cursor goes there when they are)."""
        self._end_wanted = bool(self._to_come)
        super().action_scroll_bottom()

    @property
    def item_count(self) -> int:
        return self._total

    def shows(self, target: Target) -> bool:
        """The pane has a row for ``target`` (filtered out counts as not shown)."""
        return target.key in self._by_key

    def row_cells(self, key: str) -> tuple[RenderableType, ...]:
        """The cells of the row ``key`` in the order of ``COLUMNS``, columns left out by a
        narrow pane included."""
        return self._shown[key]

    def selected_target(self) -> Target | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        row = self._by_key.get(key or "")
        return row.target if row is not None else None

    def _column_index(self, column: str) -> int:
        return self._column_indexes[column]

    def _matches(self, row: Row) -> bool:
        needle = self.filter_text.lower()
        return not needle or needle in row.search.lower()

    def _render_rows(self, cursor_key: str | None = None) -> None:
        """``cursor_key``: the row to keep the cursor on, if not the one it is on."""
        if not self.is_mounted:
            return
        self._steady_until.clear()
        wanted = [r for r in self._rows if self._matches(r)]
        if not wanted:
            message = f"no rows match “{self.filter_text}”" if self.filter_text else self.EMPTY
            placeholder = (Text(""), Text(message, style="dim italic"))
            wanted = [Row(EMPTY_KEY, placeholder + (Text(""),) * (len(self.COLUMNS) - 2), None, "")]
        self._rest_pending = 0
        first = self._first_rows or self.app.size.height
        if not self._shown and len(wanted) > first:
            # The first fill: only the rows a screen can show now, the rest right after this
            # frame (sooner to the first paint).
            self._rest_pending = len(wanted) - first
            wanted = wanted[:first]
            self.call_after_refresh(self._fill_rest)
        cursor_key = cursor_key or self._cursor_key()
        shown_columns = [i for i, (key, _, _) in enumerate(self.COLUMNS) if key in self.widths]
        wanted_keys = {r.key for r in wanted}
        for key in [k for k in self._shown if k not in wanted_keys]:
            self.remove_row(key)
            del self._shown[key]
        for row in wanted:
            shown = self._shown.get(row.key)
            cells = self._cells(row)
            if shown is None:
                self.add_row(*(_plain(cells[i]) for i in shown_columns), key=row.key)
            elif shown != cells:
                for (column, _, _), old, new in zip(self.COLUMNS, shown, cells, strict=True):
                    if old != new and column in self.widths:
                        self.update_cell(row.key, column, _plain(new))
            self._shown[row.key] = cells
        order = {r.key: i for i, r in enumerate(wanted)}
        current = [r.key.value for r in self.ordered_rows]
        if current != [r.key for r in wanted]:
            rank = {str(self._shown[r.key][0]): i for i, r in enumerate(wanted)}
            self.sort("id", key=lambda value: rank.get(str(value), len(rank)))
        self._by_key = {r.key: r for r in wanted if r.target is not None}
        listed = {r.key for r in self._rows}
        self.marked = {k: t for k, t in self.marked.items() if k in listed}  # gone: unmarked
        self.show_cursor = bool(self._by_key)
        if cursor_key in order:
            self.move_cursor(row=order[cursor_key], animate=False)
        self._update_titles()
        self.settle_dimensions(self._rest_pending + self._to_come)
        self._expect_scrollbar()
        if self._end_wanted and not self._to_come and self._by_key:
            self._end_wanted = False
            self.move_cursor(row=self.row_count - 1, animate=False)

    def _expect_scrollbar(self) -> None:
        """Before its first layout: the vertical scrollbar the rows will need, shown from the
        first frame. Textual decides it while laying the first frame out, too late for that
        frame: the screen was laid out and drawn again to add it."""
        if self._first_rows is None or self.container_size:
            return
        header = self.header_height if self.show_header else 0
        if self.virtual_size.height > header + self._first_rows:
            self.set_reactive(PaneTable.show_vertical_scrollbar, True)

    def _cells(self, row: Row) -> tuple[RenderableType, ...]:
        """The row's cells as shown: a marked row's id with a ``●`` before it."""
        cells = row.cells
        if row.key in self.marked:
            return (Text(f"●{cells[0]}", style="bold"), *cells[1:])
        return cells

    def action_toggle_mark(self) -> None:
        """``space``: mark the selected row (or unmark it) for ``a``/``r``/``c`` on all
        marked rows at once; the cursor moves on to the next row."""
        target = self.selected_target()
        if target is None:
            return
        if self.marked.pop(target.key, None) is None:
            self.marked[target.key] = target
        self._render_rows()
        self.action_cursor_down()

    def clear_marks(self) -> None:
        if self.marked:
            self.marked = {}
            self._render_rows()

    def _fill_rest(self) -> None:
        if self._rest_pending:
            self._render_rows()

    def _cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def _update_titles(self) -> None:
        """``Approvals · 4``; with a kept filter ``Approvals · 1 of 4 · filter: s5``, so a
        pane that shows fewer rows says why while the filter bar is closed."""
        shown = len(self._by_key)
        sort = "" if self.sort_by == self.SORTS[0] else f" · sort: {self.sort_by}"
        if self.marked:
            sort += f" · {len(self.marked)} marked"
        if self.filter_text:
            self.border_title = Text(
                f"{self.TITLE} · {shown} of {self._total} · filter: "
                f"{clip(self.filter_text, 24)}{sort}"
            )
        else:
            self.border_title = f"{self.TITLE} · {self._total}{sort}"
        listed = len(self._rows) + self._to_come
        if self._total > listed:
            self.border_subtitle = f"reading the first {listed} of {self._total}"
        else:
            self.border_subtitle = ""
