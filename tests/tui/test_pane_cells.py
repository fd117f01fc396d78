"""The panes' own cell rendering gives what DataTable's gives, styled character by character."""

from __future__ import annotations

from pathlib import Path

from operator_tui.devtools.fixture import fixture_app
from operator_tui.panes import PaneTable
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable


def styled_chars(lines: list[list[Segment]]) -> list[list[tuple[str, Style | None]]]:
    return [[(ch, seg.style) for seg in line for ch in seg.text] for line in lines]


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
                for column, (_, _, width) in enumerate(pane.COLUMNS):
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


def test_row_formats_its_cells_and_search_once_and_only_when_asked() -> None:
    from operator_tui.panes.base import Row

    calls: list[str] = []

    def cells() -> tuple[str, ...]:
        calls.append("cells")
        return ("#1", "noop")

    def search() -> str:
        calls.append("search")
        return "#1 noop"

    row = Row("p1", cells, None, search)
    assert calls == []
    assert row.cells == ("#1", "noop") and row.cells == ("#1", "noop")
    assert calls == ["cells"]
    assert row.search == "#1 noop" and row.search == "#1 noop"
    assert calls == ["cells", "search"]
    assert Row("p2", ("#2",), None, "#2").cells == ("#2",)
