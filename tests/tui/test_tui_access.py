"""Without colour and with a mouse: the dashboard still says what matters, and clicks work."""

from __future__ import annotations

from pathlib import Path

from operator_tui.devtools.fixture import OPERATOR, fixture_app
from operator_tui.screens.help import HelpScreen
from operator_tui.widgets.key_footer import KeyFooter
from operator_tui.widgets.status_header import StatusHeader
from tui_helpers import approve_confirmed, eventually, plain, read_proposal

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
        await approve_confirmed(pilot)  # row 2 of the fixture is high risk too
        await eventually(lambda: target.key not in [k.value for k in pane.rows])
    p = await read_proposal(db_path, target.id)
    assert p.approved_by == OPERATOR


def footer_line(app) -> str:  # type: ignore[no-untyped-def]
    return app.screen.query_one(KeyFooter).render().plain


async def test_footer_click_presses_its_key(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.app.wait_loaded()
        await pilot.pause()
        line = footer_line(app)
        assert line.startswith("⏎ Details / Filter H History a Approve r Reject c Cancel K Kill")
        assert line.endswith("? Help q Quit")
        # A click between two keys does nothing; one on "Help" (its description) opens help.
        await pilot.click("KeyFooter", offset=(line.index("Help") - 3, 0))
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.click("KeyFooter", offset=(line.index("Help") + 1, 0))
        await eventually(lambda: isinstance(app.screen, HelpScreen), what="help screen")


async def test_read_only_footer_leaves_out_the_refused_keys(db_path: Path) -> None:
    app = fixture_app(db_path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.app.wait_loaded()
        await pilot.pause()
        line = footer_line(app)
        assert "Details" in line and "Help" in line
        assert not any(word in line for word in ("Approve", "Reject", "Cancel", "Kill"))


async def test_footer_key_under_the_mouse_is_highlighted(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.app.wait_loaded()
        await pilot.pause()
        footer = app.screen.query_one(KeyFooter)
        line = footer_line(app)
        at = line.index("Help")
        hover = footer.get_component_rich_style("key-footer--hover").bgcolor

        def background_at(column: int) -> object:
            return footer.render().get_style_at_offset(app.console, column).bgcolor

        assert background_at(at) != hover
        await pilot.hover("KeyFooter", offset=(at, 0))
        await pilot.pause()
        assert background_at(at) == hover and background_at(at - 2) == hover  # "? Help"
        assert background_at(line.index("Quit")) != hover
        await pilot.hover("#approvals", offset=(5, 3))
        await pilot.pause()
        assert background_at(at) != hover
