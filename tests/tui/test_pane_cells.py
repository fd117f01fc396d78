"""A pane's row formats its cells and search text once, and only when asked."""

from __future__ import annotations


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
