"""What an idle dashboard costs: between changes it asks the database one cheap question
(``PRAGMA data_version``) and lays nothing out again; a change still shows, poked or not."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import fixture_app
from operator_tui.format import clock_time
from operator_tui.panes import PaneTable
from operator_tui.widgets import steady
from textual.app import App, ComposeResult
from textual.widgets import Static

SIZE = (120, 40)


def row_keys(app: OperatorApp, pane_id: str) -> list[str]:
    pane = app.dashboard.query_one(f"#{pane_id}", PaneTable)
    return [str(row.key.value) for row in pane.ordered_rows]


def count_layouts(app: App[Any]) -> list[int]:
    """How many layout passes the screen makes from now on (a list of one counter)."""
    screen = app.screen
    passes = [0]
    layout = screen._refresh_layout

    def counted(*args: Any, **kwargs: Any) -> None:
        passes[0] += 1
        layout(*args, **kwargs)

    screen._refresh_layout = counted  # type: ignore[method-assign]
    return passes


async def test_an_idle_dashboard_asks_only_whether_anything_changed(db_path: Path) -> None:
    """Nothing changes for a second: every statement run is the data_version poll."""
    app = fixture_app(db_path, poll_interval=0.05)
    async with app.run_test(size=SIZE):
        await app.wait_loaded()
        await asyncio.sleep(0.3)  # the follow loop has started polling
        seen: list[str] = []

        def trace(conn: sqlite3.Connection) -> None:
            conn.set_trace_callback(seen.append)

        await app.db.read(trace)
        seen.clear()
        refreshes = app.refreshes
        await asyncio.sleep(1.0)
        statements = list(seen)  # (the read below begins a transaction of its own)
        await app.db.read(lambda conn: conn.set_trace_callback(None))
        polls = [s for s in statements if s == "PRAGMA data_version"]
        assert len(polls) >= 5, f"the dashboard stopped polling: {statements}"
        assert [s for s in statements if s != "PRAGMA data_version"] == []
        assert app.refreshes == refreshes


async def test_showing_the_same_data_again_lays_nothing_out(db_path: Path) -> None:
    """A read that finds nothing new (or only a new time in the header) redraws at most the
    text that changed: no layout pass of the screen."""
    app = fixture_app(db_path, poll_interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.pause()
        data = app.dashboard.data
        assert data is not None
        passes = count_layouts(app)
        app.dashboard.show(data, [])
        app.dashboard.show_minute(data)
        await pilot.pause()
        assert passes[0] == 0
        later = replace(data, loaded_at=data.loaded_at + timedelta(seconds=1))
        app.dashboard.show_minute(later)
        await pilot.pause()
        refreshed = app.dashboard.query_one("#refreshed", Static)
        assert clock_time(later.loaded_at) in str(refreshed.render())
        assert passes[0] == 0


class OneLine(App[None]):
    CSS = "#line { width: auto; height: 1; }"  # as the header's texts

    def compose(self) -> ComposeResult:
        yield Static("", id="line")


async def test_a_static_is_laid_out_again_only_when_its_width_changes() -> None:
    app = OneLine()
    async with app.run_test(size=(40, 5)) as pilot:
        line = app.query_one("#line", Static)
        steady.show(line, "12:00:00Z")
        await pilot.pause()
        passes = count_layouts(app)
        steady.show(line, "12:00:00Z")  # the same: nothing at all
        await pilot.pause()
        assert passes[0] == 0
        steady.show(line, "12:01:00Z")  # as wide: redrawn in place
        await pilot.pause()
        assert passes[0] == 0
        assert "12:01:00Z" in str(line.render())
        steady.show(line, "12:01:00Z and more")  # wider: laid out
        await pilot.pause()
        assert passes[0] >= 1
        assert line.size.width == len("12:01:00Z and more")
