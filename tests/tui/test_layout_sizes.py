"""Sizes the dashboard works out before its layout: the header's room for the database path
(in full when there is room, cut from the left, its file name kept, when not), and each
pane's width and rows (its columns fitted and its first fill sized before it is laid out)."""

from __future__ import annotations

import shutil
from pathlib import Path

from operator_tui.devtools.fixture import DB_NAME, fixture_app
from operator_tui.widgets.status_header import MetaLine


async def _meta(path: Path, width: int) -> str:
    app = fixture_app(path)
    async with app.run_test(size=(width, 30)) as pilot:
        await app.wait_loaded()
        await pilot.pause()
        meta = app.dashboard.query_one(MetaLine)
        return meta.render().plain


async def test_the_header_shows_the_whole_path_when_there_is_room(
    tmp_path: Path, fixture_dirs: dict[bool, Path]
) -> None:
    deep = tmp_path / "a-rather-long-directory-name" / "another-level-of-it"
    deep.mkdir(parents=True)
    path = deep / DB_NAME
    shutil.copy(fixture_dirs[False] / DB_NAME, path)
    wide = await _meta(path, 200)
    assert str(path) in wide
    narrow = await _meta(path, 80)
    assert str(path) not in narrow
    shown = narrow.split(" db ", 1)[1].strip()
    assert shown.startswith("…") and shown.endswith(DB_NAME)
    assert str(path).endswith(shown[1:])


async def test_panes_are_sized_before_layout_as_the_layout_makes_them(db_path: Path) -> None:
    """What the screen tells each pane before its first layout (``PaneTable.expect``: its
    columns fitted, its first fill, its scrollbar) is what the layout then gives it: the same
    width inside its border and the same rows."""
    for size in ((80, 24), (120, 36), (121, 40), (160, 48)):
        app = fixture_app(db_path)
        async with app.run_test(size=size) as pilot:
            await app.wait_loaded()
            await pilot.pause()
            expected = app.dashboard._pane_sizes()
            for pane in app.dashboard.panes():
                if not pane.display:
                    continue
                width, rows = expected[pane.id or ""]
                assert pane.size.width == width, (size, pane.id)
                assert pane.size.height - 1 == rows, (size, pane.id)  # less the column header


async def test_an_empty_pane_says_so_in_full_across_its_columns(observe_db_path: Path) -> None:
    """The kill switch emptied every pane: each says why in words no column is wide enough
    for alone (cut with an ellipsis only where the pane itself is narrower)."""
    app = fixture_app(observe_db_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_loaded()
        await pilot.pause()
        for pane in app.dashboard.panes():
            first_row = pane.render_line(1).text  # below the column header
            assert pane.EMPTY in first_row, (pane.id, first_row)
