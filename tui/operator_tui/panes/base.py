"""A dashboard pane: a row-cursor DataTable updated in place by row key, with a filter.

Each pane turns the loaded data into ``Row`` values; ``show`` diffs them against what is on
screen (remove gone rows, update changed cells, add new rows, reorder only if needed), so
the cursor stays on the same item while the database changes underneath it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import islice
from typing import Any, ClassVar

from rich.console import RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from operator_tui.data import DashboardData, Target
from operator_tui.format import plain, steady_for

EMPTY_KEY = "-empty-"


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
    shown pay for it."""
    return plain(cell) if isinstance(cell, str) else cell


class PaneTable(DataTable[RenderableType]):
    """Base of the four panes."""

    BINDINGS = [
        Binding("enter", "screen.details", "Details"),
        Binding("escape", "screen.clear_filter", "Clear filter", show=False),
    ]

    TITLE: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[tuple[str, str, int], ...]] = ()
    """(key, label, width): fixed widths, so columns never jump as rows come and go."""
    TICKING: ClassVar[tuple[str, ...]] = ()
    """Columns recomputed every second from the clock (countdowns), without a DB read."""
    EMPTY: ClassVar[str] = "nothing here"

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.filter_text = ""
        self._rows: list[Row] = []
        self._shown: dict[str, tuple[RenderableType, ...]] = {}
        self._by_key: dict[str, Row] = {}
        self._total = 0
        self._rest_pending = 0
        """Rows the first fill left for after the first frame."""
        self._steady_until: dict[str, float] = {}
        """Row key → until when (epoch seconds) its ticking cells read the same."""
        self._column_indexes = {key: i for i, (key, _, _) in enumerate(self.COLUMNS)}

    def on_mount(self) -> None:
        for key, label, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)
        self.border_title = self.TITLE
        self._render_rows()

    # ------------------------------------------------------------------ what subclasses say

    def rows_for(self, data: DashboardData, now: datetime) -> list[Row]:
        raise NotImplementedError

    def total(self, data: DashboardData) -> int:
        """How many items the pane has in the database (may exceed the rows read)."""
        raise NotImplementedError

    def tick_cells(self, row: Row, now: datetime) -> dict[str, RenderableType]:
        return {}

    def tick_times(self, row: Row) -> tuple[datetime | None, ...] | None:
        """The times the row's ticking cells count to or from (each shown through
        ``duration``), so a row far from any of them is not recomputed every second; ``()``
        if they do not move with the clock at all, None if unknown (recomputed every tick)."""
        return None

    # ------------------------------------------------------------------ updating

    def show(self, data: DashboardData, now: datetime) -> None:
        self._rows = self.rows_for(data, now)
        self._total = self.total(data)
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
            self._update_cells_in_place(changed)

    def _update_cells_in_place(self, changes: list[tuple[str, str, RenderableType]]) -> None:
        """``update_cell`` for each change, but re-rendering only the rows that changed.

        DataTable's ``update_cell`` bumps a counter that every one of its render caches keys
        on, so one countdown ticking made the whole visible table render again, every cell of
        every row, once a second (most of the dashboard's idle CPU). Columns here have fixed
        widths and rows one line, so a new value changes nothing but its own row: drop just
        that row's cached renders and lines, and redraw only its line.
        """
        rows: set[RowKey] = set()
        cells: set[tuple[RowKey, ColumnKey]] = set()
        for key, column, value in changes:
            row_key, column_key = RowKey(key), ColumnKey(column)
            if row_key not in self._row_locations or column_key not in self._column_locations:
                continue
            self._data[row_key][column_key] = _plain(value)
            rows.add(row_key)
            cells.add((row_key, column_key))
        if not rows:
            return
        indexes = [i for i in (self._row_locations.get(k) for k in rows) if i is not None]
        for index in indexes:
            self._row_renderable_cache.discard((self._update_count, index))
        # (Textual's LRUCache has keys() but is not iterable itself.)
        cached_cells, cached_rows = self._cell_render_cache.keys(), self._row_render_cache.keys()
        for cell_key in [k for k in cached_cells if (k[0], k[1]) in cells]:
            self._cell_render_cache.discard(cell_key)
        for row_cache_key in [k for k in cached_rows if k[0] in rows]:
            self._row_render_cache.discard(row_cache_key)
        # Lines are cached by their y in the table (the header's lines first, then one line
        # per row); only the changed rows' lines are redrawn.
        header = self.header_height if self.show_header else 0
        lines = {header + index for index in indexes}
        cached_lines = self._line_cache.keys()
        for line_key in [k for k in cached_lines if k[0] in lines]:
            self._line_cache.discard(line_key)
        # One region from the first changed row to the last: each separate region costs the
        # compositor a pass, and the unchanged lines between are cache hits.
        # (Every row is one line: no need for DataTable's _get_row_region, which sums the
        # heights of all the rows above.)
        width = max(self.size.width, self.virtual_size.width)
        self._refresh_region(Region(0, min(lines), width, max(lines) - min(lines) + 1))

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """DataTable's cell rendering, straight to segments for a one-line ``Text`` cell.

        DataTable renders every cell through Rich's generic pipeline (a ``Styled`` around a
        ``Padding`` around the cell, measured, wrapped, split into lines and cropped): about
        0.1 ms a cell, most of the time a pane takes to draw. Our cells are one-line
        ``Text`` in fixed-width columns, so the same segments come from cropping the text and
        padding it. Anything else (headers, other renderables, tabs, new lines, justified
        text, taller rows) goes through DataTable's own rendering; a test checks that both
        give the same styled characters for every cell of the panes.
        """
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        cache_key = (
            row_key,
            self._column_locations.get_key(column_index),
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cache = self._cell_render_cache
        if cache_key in cache:
            return cache[cache_key]  # type: ignore[no-any-return]
        cells = self._get_row_renderables(row_index).cells
        cell = cells[column_index] if column_index < len(cells) else None
        row = self.rows.get(row_key)  # type: ignore[arg-type]
        padding = self.cell_padding
        if (
            type(cell) is not Text
            or row is None
            or row.height != 1
            or width < 2 * padding
            or cell.justify not in (None, "default")
            or "\n" in cell.plain
            or "\t" in cell.plain
        ):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        component_style, post_style = self._get_styles_to_render_cell(
            False,
            False,
            row_index < self.fixed_rows or column_index < self.fixed_columns,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index})
        pre_style += component_style
        inner = width - 2 * padding
        # As Text renders itself: its own style becomes a span (Text.join), cut to the width.
        text = Text("").join([cell])
        if text.cell_len > inner:
            text.truncate(inner, overflow=cell.overflow or "fold")
        segments = [Segment(" " * padding)] if padding else []
        segments.extend(text.render(self.app.console))
        if text.cell_len < inner:
            segments.append(Segment(" " * (inner - text.cell_len)))
        if padding:
            segments.append(Segment(" " * padding))
        lines = [list(Segment.apply_style(segments, pre_style, post_style))]
        cache[cache_key] = lines
        return lines

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Every column has a fixed width and every row one line, so DataTable's measuring of
        each new cell (a Rich render per cell: most of the first paint's layout work with
        four panes of 200 rows) would change nothing; only the scrollable size is updated."""
        if any(column.auto_width for column in self.columns.values()):
            super()._update_dimensions(new_rows)
        else:
            super()._update_dimensions(())

    @property
    def settled(self) -> bool:
        """No column-width or row-size work left for the next idle moment (screenshots wait
        for this)."""
        return (
            not self._updated_cells
            and not self._require_update_dimensions
            and not self._rest_pending
        )

    @property
    def item_count(self) -> int:
        return self._total

    def shows(self, target: Target) -> bool:
        """The pane has a row for ``target`` (filtered out counts as not shown)."""
        return target.key in self._by_key

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

    def _render_rows(self) -> None:
        if not self.is_mounted:
            return
        self._steady_until.clear()
        wanted = [r for r in self._rows if self._matches(r)]
        if not wanted:
            message = f"no rows match “{self.filter_text}”" if self.filter_text else self.EMPTY
            placeholder = (Text(""), Text(message, style="dim italic"))
            wanted = [Row(EMPTY_KEY, placeholder + (Text(""),) * (len(self.COLUMNS) - 2), None, "")]
        self._rest_pending = 0
        first = self.app.size.height
        if not self._shown and len(wanted) > first:
            # The first fill: only the rows a screen can show now, the rest right after this
            # frame (the time to the first paint, with four panes of 200 rows).
            self._rest_pending = len(wanted) - first
            wanted = wanted[:first]
            self.call_after_refresh(self._fill_rest)
        cursor_key = self._cursor_key()
        wanted_keys = {r.key for r in wanted}
        for key in [k for k in self._shown if k not in wanted_keys]:
            self.remove_row(key)
            del self._shown[key]
        for row in wanted:
            shown = self._shown.get(row.key)
            if shown is None:
                self.add_row(*map(_plain, row.cells), key=row.key)
            elif shown != row.cells:
                for (column, _, _), old, new in zip(self.COLUMNS, shown, row.cells, strict=True):
                    if old != new:
                        self.update_cell(row.key, column, _plain(new))
            self._shown[row.key] = row.cells
        order = {r.key: i for i, r in enumerate(wanted)}
        current = [r.key.value for r in self.ordered_rows]
        if current != [r.key for r in wanted]:
            rank = {str(r.cells[0]): i for i, r in enumerate(wanted)}
            self.sort("id", key=lambda value: rank.get(str(value), len(rank)))
        self._by_key = {r.key: r for r in wanted if r.target is not None}
        self.show_cursor = bool(self._by_key)
        if cursor_key in order:
            self.move_cursor(row=order[cursor_key], animate=False)
        self._update_titles()
        self._settle_dimensions()

    def _settle_dimensions(self) -> None:
        """The scrollable size, now rather than when DataTable next goes idle (which may come
        after the next frame, and lay the pane out again with its scrollbars): cheap here,
        with fixed column widths and one line per row."""
        if self._require_update_dimensions:
            self._require_update_dimensions = False
            new_rows = self._new_rows.copy()
            self._new_rows.clear()
            self._update_dimensions(new_rows)
            if self._rest_pending:
                # Room for the rows still to come, so the scrollbar does not change then.
                width, height = self.virtual_size
                self.virtual_size = Size(width, height + self._rest_pending)

    def _fill_rest(self) -> None:
        if self._rest_pending:
            self._render_rows()

    def _cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def _update_titles(self) -> None:
        shown = len(self._by_key)
        self.border_title = f"{self.TITLE} · {self._total}"
        notes = []
        if self.filter_text:
            notes.append(f"filter: {self.filter_text}")
        if self._total > len(self._rows):
            notes.append(f"showing {len(self._rows)} of {self._total}")
        elif self.filter_text:
            notes.append(f"{shown} match")
        self.border_subtitle = " · ".join(notes)
