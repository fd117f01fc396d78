"""FixedTable's shortcuts give what the plain DataTable API gives, and its test fails with a
clear message when Textual moves a private member it relies on."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import textual
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operator_tui.devtools.fixture import fixture_app
from operator_tui.panes import PaneTable
from operator_tui.widgets.fixed_table import PRIVATES, FixedTable
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

COLUMNS = (("id", "ID", 4), ("name", "Name", 10), ("note", "Note", 6))


def moved(what: str) -> str:
    return (
        f"Textual's DataTable.{what} moved or changed (textual {textual.__version__}): "
        "update operator_tui/widgets/fixed_table.py"
    )


def styled_chars(lines: list[list[Segment]]) -> list[list[tuple[str, Style | None]]]:
    return [[(ch, seg.style) for seg in line for ch in seg.text] for line in lines]


class Pair(App[None]):
    """A FixedTable and a plain DataTable side by side, given the same updates."""

    CSS = "DataTable { width: 30; height: 12; }"
    AUTO_FOCUS = None  # a focused table is styled differently

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield FixedTable(id="fixed", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="plain", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for table in self.query(DataTable):
            for key, label, width in COLUMNS:
                table.add_column(label, key=key, width=width)


# ---------------------------------------------------------------------- Textual's privates


async def test_datatable_privates_fixed_table_relies_on_are_there() -> None:
    app = Pair()
    async with app.run_test(size=(70, 14)) as pilot:
        table = app.query_one("#fixed", FixedTable)
        table.add_row(Text("1"), Text("one"), Text("x"), key="r1")
        await pilot.pause()
        for name in PRIVATES:
            assert hasattr(table, name), moved(name)
            assert name not in vars(FixedTable) or hasattr(DataTable, name), moved(name)
        for method, params in (
            ("_render_cell", ["row_index", "column_index", "base_style", "width", "cursor"]),
            ("_update_dimensions", ["new_rows"]),
        ):
            signature = list(inspect.signature(getattr(DataTable, method)).parameters)
            assert signature[1 : len(params) + 1] == params, moved(f"{method} signature")
        styles = inspect.signature(DataTable._get_styles_to_render_cell).parameters
        assert len(styles) == 10, moved("_get_styles_to_render_cell signature")
        # The cache keys the shortcuts read and invalidate: a cell's starts (row, column),
        # a row's with the row key, a line's with its y.
        table._cell_render_cache.clear()
        DataTable._render_cell(table, 0, 0, Style(), 6)
        cell_keys = list(table._cell_render_cache.keys())
        assert cell_keys, moved("_cell_render_cache")
        assert cell_keys[0][:2] == (RowKey("r1"), ColumnKey("id")), moved("_cell_render_cache")
        assert cell_keys[0][6] == table._update_count, moved("_cell_render_cache key")
        table.render_line(1)
        # (Textual's LRUCache has keys() but is not iterable itself.)
        row_keys, line_keys = table._row_render_cache.keys(), table._line_cache.keys()
        assert any(k[0] == RowKey("r1") for k in row_keys), moved("_row_render_cache key")
        assert any(k[0] == 1 for k in line_keys), moved("_line_cache key")
        assert (table._update_count, 0) in table._row_renderable_cache, moved(
            "_row_renderable_cache key"
        )


# ---------------------------------------------------------------------- same as DataTable

KEYS = st.sampled_from([f"r{i}" for i in range(14)])
WORDS = st.text(alphabet="ab yz-漢", max_size=14)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), KEYS, WORDS),
        st.tuples(st.just("remove"), KEYS),
        st.tuples(
            st.just("update"),
            st.lists(st.tuples(KEYS, st.sampled_from(["name", "note"]), WORDS), max_size=4),
        ),
        st.tuples(st.just("sort"), st.booleans()),
        st.tuples(st.just("cursor"), st.integers(0, 13)),
    ),
    max_size=25,
)


def apply(table: DataTable, op: tuple, fixed: bool) -> None:
    kind = op[0]
    if kind == "add" and RowKey(op[1]) not in table.rows:
        table.add_row(Text(op[1][1:]), Text(op[2]), Text(op[2][:3]), key=op[1])
    elif kind == "remove" and RowKey(op[1]) in table.rows:
        table.remove_row(op[1])
    elif kind == "update":
        changes = [(k, c, Text(v)) for k, c, v in op[1] if RowKey(k) in table.rows]
        if fixed:
            assert isinstance(table, FixedTable)
            table.update_cells_in_place(changes)
        else:
            for key, column, value in changes:
                table.update_cell(key, column, value)
    elif kind == "sort":
        table.sort("name", "id", key=lambda c: (c[0].plain, c[1].plain), reverse=op[1])
    elif kind == "cursor":
        table.move_cursor(row=op[1], animate=False)


def seen(table: DataTable) -> tuple:
    """What the table holds and shows: rows in order with their cells, the cursor, the
    scrollable size and every line drawn, styled character by character."""
    rows = [(row.key.value, [str(c) for c in table.get_row(row.key)]) for row in table.ordered_rows]
    lines = [styled_chars([list(table.render_line(y))]) for y in range(table.size.height)]
    return rows, table.cursor_coordinate, table.virtual_size, lines


async def same_after(ops: list[tuple]) -> None:
    app = Pair()
    async with app.run_test(size=(70, 14)) as pilot:
        fixed, plain = app.query_one("#fixed", FixedTable), app.query_one("#plain", DataTable)
        await pilot.pause()
        for op in ops:
            apply(fixed, op, fixed=True)
            apply(plain, op, fixed=False)
            fixed.settle_dimensions()
            await pilot.pause()
            assert seen(fixed) == seen(plain), op
            assert fixed.layout_settled


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(OPS)
def test_fixed_table_shows_what_datatable_shows_after_the_same_updates(ops: list[tuple]) -> None:
    asyncio.run(same_after(ops))


def test_update_in_place_redraws_a_cell_already_drawn() -> None:
    asyncio.run(
        same_after(
            [
                ("add", "r1", "old"),
                ("add", "r2", "kept"),
                ("update", [("r1", "name", "new"), ("r9", "name", "absent")]),
                ("cursor", 1),
                ("update", [("r2", "note", "n")]),
            ]
        )
    )


# ---------------------------------------------------------- cells, as the panes show them


def both_ways(
    pane: PaneTable, row: int, column: int, style: Style, width: int, cursor: bool, hover: bool
) -> tuple[list, list]:
    pane._cell_render_cache.clear()
    ours = pane._render_cell(row, column, style, width, cursor, hover)
    pane._cell_render_cache.clear()
    theirs = DataTable._render_cell(pane, row, column, style, width, cursor, hover)
    return styled_chars(ours), styled_chars(theirs)


async def test_pane_cells_render_as_datatable_renders_them(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.app.wait_loaded()
        await pilot.pause()
        compared = 0
        for pane in app.screen.query(PaneTable):
            assert pane.row_count
            for row in range(pane.row_count):
                # The widths the pane fitted to its width (columns it left out excluded).
                for column, width in enumerate(c.width for c in pane.ordered_columns):
                    for style, cursor, hover in (
                        (Style(), False, False),
                        (Style(bgcolor="#202020"), True, False),
                        (Style(color="red", bold=True), False, True),
                    ):
                        for cell_width in (width + 2, 4, 1):  # as wide as the column; cut
                            ours, theirs = both_ways(
                                pane, row, column, style, cell_width, cursor, hover
                            )
                            assert ours == theirs, (pane.id, row, column, cell_width)
                            compared += 1
        assert compared > 500


async def test_unusual_cells_fall_back_to_datatable(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.app.wait_loaded()
        await pilot.pause()
        pane = app.screen.query_one("#approvals", PaneTable)
        key = next(iter(pane.rows))
        first = pane.ordered_columns[1].key
        for cell in (
            Text("styled base", style="bold reverse"),
            Text("tab\there"),
            Text("a very long value that will not fit", overflow="ellipsis"),
            Text("wide 漢字 chars"),
            Text("right", justify="right"),
        ):
            pane.update_cell(key, first, cell)
            index = pane.get_row_index(key)
            ours, theirs = both_ways(pane, index, 1, Style(), 12, False, False)
            assert ours == theirs, cell.plain
