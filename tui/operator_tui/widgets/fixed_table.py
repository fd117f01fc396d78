"""A DataTable whose columns have fixed widths and whose rows are one line each.

With those two promises most of DataTable's generic work changes nothing, and this widget
skips it. It is the only code that touches DataTable's private members (``PRIVATES``):
``tests/tui/test_fixed_table.py`` holds each shortcut equal to the plain DataTable API and
fails with a clear message when Textual moves one of them (textual is pinned below 9).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

PRIVATES = (
    "_cell_render_cache",
    "_clear_caches",
    "_column_locations",
    "_data",
    "_get_row_renderables",
    "_get_styles_to_render_cell",
    "_line_cache",
    "_new_rows",
    "_pseudo_class_state",
    "_refresh_region",
    "_render_cell",
    "_require_update_dimensions",
    "_row_locations",
    "_row_render_cache",
    "_row_renderable_cache",
    "_show_hover_cursor",
    "_update_count",
    "_update_dimensions",
    "_updated_cells",
)
"""The DataTable members this widget relies on (checked by its test)."""


class FixedTable(DataTable[RenderableType]):
    """Columns of fixed width (``add_column(..., width=N)``), rows of height 1."""

    SPAN_KEY: str | None = None
    """The key of a row whose second cell spans the rest of the row (a message shown in
    place of rows, which no column is wide enough for): the cells after it are not drawn."""

    def update_cells_in_place(self, changes: Iterable[tuple[str, str, RenderableType]]) -> None:
        """``update_cell(row, column, value)`` for each change, re-rendering only the rows
        that changed.

        DataTable's ``update_cell`` bumps a counter that every one of its render caches keys
        on, so one countdown ticking re-rendered every visible cell. With fixed widths and
        one-line rows a new value changes nothing but its own row: drop just that row's
        cached renders and lines, and redraw only its line. Changes to rows or columns the
        table does not have are ignored.
        """
        rows: set[RowKey] = set()
        cells: set[tuple[RowKey, ColumnKey]] = set()
        for key, column, value in changes:
            row_key, column_key = RowKey(key), ColumnKey(column)
            if row_key not in self._row_locations or column_key not in self._column_locations:
                continue
            self._data[row_key][column_key] = value
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
        # One region from the first changed row to the last: each region costs the
        # compositor a pass, and the unchanged lines between are cache hits. (Every row is
        # one line: no need for DataTable's _get_row_region, which sums the rows above.)
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
        ``Padding`` around the cell, measured, wrapped, split into lines and cropped), most of
        the time a pane takes to draw. A one-line ``Text`` in a fixed-width column gives the
        same segments by cropping and padding it. Anything else (headers, other renderables,
        tabs, new lines, justified text, taller rows) goes through DataTable's own rendering.
        """
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        if row_key is not None and row_key.value == self.SPAN_KEY and column_index >= 1:
            if column_index > 1:
                return [[]]  # drawn by the spanning cell (DataTable joins the cells' lines)
            width = sum(c.get_render_width(self) for c in self.ordered_columns[1:])
        # DataTable's own cache key for a cell, so its invalidation applies to ours.
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
        # DataTable's own styling of a cell (cursor, hover, fixed rows and columns).
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
        """With fixed widths and one-line rows, DataTable's measuring of each new cell (a
        Rich render per cell, most of a first paint's layout work) changes nothing: only the
        scrollable size is updated."""
        if any(column.auto_width for column in self.columns.values()):
            super()._update_dimensions(new_rows)
        else:
            super()._update_dimensions(())

    def set_column_widths(self, widths: dict[str, int]) -> None:
        """New widths for columns the table has (DataTable has no API to change one): every
        cached render is stale, and the scrollable width is measured again."""
        for key, width in widths.items():
            self.columns[ColumnKey(key)].width = width
        self._clear_caches()
        self._require_update_dimensions = True
        self.refresh()

    @property
    def layout_settled(self) -> bool:
        """No column-width or row-size work left for DataTable's next idle moment."""
        return not self._updated_cells and not self._require_update_dimensions

    def settle_dimensions(self, rows_to_come: int = 0) -> None:
        """The scrollable size now, rather than when DataTable next goes idle (which may come
        after the next frame, and lay the table out again with its scrollbars); with room
        for ``rows_to_come`` more rows, so the scrollbar does not change when they arrive."""
        if self._require_update_dimensions:
            self._require_update_dimensions = False
            new_rows = self._new_rows.copy()
            self._new_rows.clear()
            self._update_dimensions(new_rows)
            if rows_to_come:
                width, height = self.virtual_size
                self.virtual_size = Size(width, height + rows_to_come)
