"""What the dashboard's first frame waits for: the modules it does not need are imported
after it (the automations' code, the fingerprint checks, the executor, the signing code),
and the audit publisher still starts, after the subject is loaded."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

LATER = (
    "cryptography",
    "operator_core.anchor.runtime",
    "operator_core.actions.executor",
    "operator_core.actions.fingerprint",
    "operator_core.db.automation_rows",
    "operator_core.db.executions",
    "pydantic",
)
"""Imported after the first frame, if at all."""

PROBE = """
import asyncio, inspect, json, sys
from pathlib import Path

from operator_tui import load_app

OperatorApp = load_app()
LATER = json.loads(sys.argv[2])
seen = {"order": []}


def loaded():
    return sorted(m for m in LATER if m in sys.modules)


class Probe(OperatorApp):
    CSS_PATH = str(Path(inspect.getfile(OperatorApp)).parent / str(OperatorApp.CSS_PATH))

    def _started(self):
        seen["order"].append("started")
        seen["rows at the first frame"] = len(self.dashboard.data.approvals)
        seen["imported by the first frame"] = loaded()
        seen["publisher at the first frame"] = self.db.audit_publisher is not None
        super()._started()

    def _start_anchor(self):
        seen["order"].append("anchor")
        super()._start_anchor()
        seen["publisher after it"] = self.db.audit_publisher is not None
        seen["imported after it"] = loaded()


def subject():
    from operator_tui.devtools.fixture import FixtureSubject
    return FixtureSubject()


async def drive(pilot):
    await app.wait_loaded()
    while "publisher after it" not in seen:
        await asyncio.sleep(0.01)
    app.exit()


app = Probe(sys.argv[1], subject_loader=subject)
app.run(headless=True, size=(120, 40), auto_pilot=drive)
print(json.dumps(seen))
"""


def test_the_first_frame_imports_only_what_it_shows_and_the_publisher_starts_after(
    db_path: Path, tmp_path: Path
) -> None:
    """A fresh interpreter, checkpoints configured: nothing in ``LATER`` is imported by the
    time the first frame (with its rows) is drawn; the subject is loaded next, then the audit
    publisher starts (with the signing code)."""
    env = dict(os.environ)
    env["OPERATOR_AUDIT_CHECKPOINT_DIR"] = str(tmp_path / "anchor")
    env["OPERATOR_AUDIT_KEY_FILE"] = str(tmp_path / "audit.key")
    env.pop("OPERATOR_AUDIT_KEY", None)
    (tmp_path / "anchor").mkdir()
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(db_path), json.dumps(LATER)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["rows at the first frame"] > 0
    assert seen["imported by the first frame"] == []
    assert seen["publisher at the first frame"] is False
    assert seen["order"] == ["started", "anchor"]
    assert seen["publisher after it"] is True
    assert "cryptography" in seen["imported after it"]
    assert "operator_core.actions.executor" in seen["imported after it"]


async def _scrollbars_at_first_layout(
    db_path: Path, size: tuple[int, int]
) -> tuple[dict[str, tuple[bool, int, int]], dict[str, bool]]:
    """Per pane, at the screen's first layout: (its vertical scrollbar shown, its rows with
    the column header, the lines it has for them); and per pane shown, its scrollbar once
    the dashboard has settled."""
    from operator_tui.devtools.fixture import fixture_app

    app = fixture_app(db_path)
    first: dict[str, tuple[bool, int, int]] = {}
    screen = app.dashboard
    refresh_layout = screen._refresh_layout

    def recorded(*args: Any, **kwargs: Any) -> None:
        if not first:
            for pane in screen.panes():
                first[pane.id or ""] = (
                    pane.show_vertical_scrollbar,
                    pane.virtual_size.height,
                    (pane._first_rows or 0) + pane.header_height,
                )
        refresh_layout(*args, **kwargs)

    screen._refresh_layout = recorded  # type: ignore[method-assign]
    async with app.run_test(size=size) as pilot:
        await app.wait_loaded()
        await pilot.pause()
        settled = {p.id or "": p.show_vertical_scrollbar for p in screen.panes() if p.display}
    return first, settled


async def test_the_first_layout_already_has_the_scrollbars_the_rows_need(db_path: Path) -> None:
    """Each pane with more rows than it shows has its vertical scrollbar when the screen is
    first laid out (decided by Textual during that layout, it came a frame late: the whole
    screen was laid out and drawn again to add it). In the grid (120x36) the fixture's
    Approvals overflow; the layouts after the first do not change a pane's scrollbar."""
    for size in ((80, 24), (120, 36), (160, 48)):
        first, settled = await _scrollbars_at_first_layout(db_path, size)
        overflowing = {p for p, (_, rows, room) in first.items() if rows > room}
        assert size != (120, 36) or "approvals" in overflowing, first
        for pane, (shown, rows, room) in first.items():
            assert shown == (rows > room), (size, pane, first)
        for pane, shown in settled.items():
            assert shown == first[pane][0], (size, pane)


async def test_the_first_read_reads_the_rows_shown_and_the_rest_right_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 scheduled actions: the first read reads the rows the first frame shows, and that
    frame already has the title, the count and the scrollable height of all 60; the rest are
    read after it. End pressed before they are read takes the cursor to the last of all."""
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry
    from operator_core.clock import FrozenClock
    from operator_tui import data as dashboard_data
    from operator_tui.app import OperatorApp
    from operator_tui.devtools.fixture import FIXTURE_NOW, FixtureSubject
    from operator_tui.panes import PaneTable
    from operator_tui.screens.dashboard import DashboardScreen

    path = tmp_path / "scheduled.db"
    clock = FrozenClock(FIXTURE_NOW)
    subject = FixtureSubject()
    registry = ActionRegistry.from_subject(subject)
    async with ActionExecutor(path, registry, approval_mode=False, clock=clock) as ex:
        await ex.propose_actions(
            [
                {"action_name": "check_health", "reason": f"later {i}", "schedule_in": 600 + i}
                for i in range(60)
            ]
        )
    reads: list[tuple[int, bool]] = []
    let_the_rest_in = asyncio.Event()
    load = dashboard_data.load

    async def held_load(*args: Any) -> dashboard_data.DashboardData:
        if reads:
            await let_the_rest_in.wait()
        data = await load(*args)
        reads.append((len(data.scheduled), data.partial))
        return data

    monkeypatch.setattr(dashboard_data, "load", held_load)
    first: list[tuple[int, int, str, str]] = []
    refresh = DashboardScreen._compositor_refresh

    def recording_refresh(screen: DashboardScreen) -> None:
        pane = screen.query_one("#scheduled", PaneTable)
        if not first and pane.row_count:
            title, subtitle = str(pane.border_title), str(pane.border_subtitle)
            first.append((pane.row_count, pane.virtual_size.height, title, subtitle))
        refresh(screen)

    monkeypatch.setattr(DashboardScreen, "_compositor_refresh", recording_refresh)
    app = OperatorApp(path, subject, clock=clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.started.wait()
        shown = app.dashboard._pane_sizes()["scheduled"][1]
        # (Under a test the first read has the console's size, 80x25: 11 rows, not 4.)
        assert len(reads) == 1 and shown <= reads[0][0] < 60 and reads[0][1]
        assert first == [(shown, 61, "Scheduled · 60", "")]
        await pilot.press("4", "end")  # the Scheduled pane, its last row: before the rest
        let_the_rest_in.set()
        await app.wait_loaded()
        await pilot.pause()
        pane = app.dashboard.query_one("#scheduled", PaneTable)
        assert reads[1:] == [(60, False)]
        assert (pane.row_count, pane.virtual_size.height) == (60, 61)
        assert str(pane.border_title) == "Scheduled · 60"
        assert pane.cursor_row == 59
        target = pane.selected_target()
        assert target is not None and target.key == str(pane.ordered_rows[-1].key.value)
