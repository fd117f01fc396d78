"""Without colour and with a mouse: the dashboard still says what matters, and clicks work."""

from __future__ import annotations

from pathlib import Path

from operator_tui.fixture import OPERATOR, fixture_app
from operator_tui.widgets.status_header import StatusHeader
from tui_helpers import eventually, plain, read_proposal

SIZE = (100, 30)


async def test_observe_banner_reads_without_colour(observe_db_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = fixture_app(observe_db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.app.wait_loaded()
        await pilot.pause()
        assert app.no_color
        header = plain(app.screen.query_one(StatusHeader).query_one("#banner"))
        assert "KILL SWITCH" in header and "OBSERVE" in header and "execution is OFF" in header


async def test_mouse_click_selects_a_row_then_a_approves_it(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.app.wait_loaded()
        await pilot.pause()
        pane = app.screen.query_one("#approvals")
        # Row 2 of the table (the header is line 0 inside the border).
        await pilot.click("#approvals", offset=(10, 3))
        await pilot.pause()
        target = app.dashboard.current_target()
        assert target is not None and pane.cursor_row == 1
        await pilot.press("a")
        await eventually(lambda: target.key not in [k.value for k in pane.rows])
    p = await read_proposal(db_path, target.id)
    assert p.approved_by == OPERATOR
