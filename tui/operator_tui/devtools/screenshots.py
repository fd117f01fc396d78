"""Regenerate ``screenshots/`` from the fixture database, in one command:

    python3 -m uv run python -m operator_tui.devtools.screenshots [OUTPUT_DIR]

The same views (and the same way of reaching them) serve the snapshot tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input

from operator_tui.app import OperatorApp
from operator_tui.devtools.automation_screens import (
    AUTOMATION_SCREENSHOTS,
    AUTOMATION_VIEWS,
    build_automation_fixture_dir,
    capture_automations,
)
from operator_tui.devtools.fixture import DB_NAME, build_fixture, fixture_app
from operator_tui.panes import PaneTable
from operator_tui.screens.audit import AuditScreen
from operator_tui.screens.confirm import ConfirmModal
from operator_tui.screens.detail import DetailScreen
from operator_tui.screens.history import HistoryScreen
from operator_tui.widgets.event_tail import EventTail

WIDE = (160, 48)
MEDIUM = (120, 40)
NARROW = (80, 24)


@dataclass(frozen=True)
class View:
    name: str
    keys: tuple[str, ...] = ()
    observe: bool = False
    """Open the fixture after the kill switch (the OBSERVE banner)."""
    sizes: tuple[tuple[int, int], ...] = (NARROW, WIDE)
    """The sizes its snapshot tests are taken at."""


ALL_SIZES = (NARROW, MEDIUM, WIDE)


VIEWS = {
    view.name: view
    for view in (
        View("approvals", sizes=ALL_SIZES),
        View("workflows", ("tab", "tab"), sizes=ALL_SIZES),
        View("scheduled", ("4",), sizes=ALL_SIZES),
        View("retries", ("shift+tab",), sizes=ALL_SIZES),
        View("detail", ("enter",)),
        View("help", ("question_mark",)),
        View("kill-switch", ("K",)),
        View("approve-high-risk", ("a",), sizes=ALL_SIZES),
        View("observe", observe=True),
        View("running", ("2",), sizes=ALL_SIZES),
        View("history", ("H",), sizes=ALL_SIZES),
        View("history-search", ("H", "slash", "s", "5", "enter"), sizes=ALL_SIZES),
        View("history-detail", ("H", "j", "enter"), sizes=ALL_SIZES),
        View("audit", ("L",), sizes=ALL_SIZES),
    )
}

SCREENSHOTS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("approvals", WIDE),
    ("approvals", MEDIUM),
    ("approvals", NARROW),
    ("workflows", NARROW),
    ("scheduled", NARROW),
    ("retries", NARROW),
    ("detail", WIDE),
    ("help", NARROW),
    ("kill-switch", WIDE),
    ("approve-high-risk", MEDIUM),
    ("observe", WIDE),
    ("running", MEDIUM),
    ("history", MEDIUM),
    ("history-search", NARROW),
    ("history-detail", WIDE),
    ("audit", MEDIUM),
)


async def reach(pilot: Pilot[None], view: View) -> None:
    """Wait for the first paint, press the view's keys, wait until it has settled."""
    app = pilot.app
    assert isinstance(app, OperatorApp)
    await app.wait_loaded()
    await app.started.wait()  # the risks shown
    for key in view.keys:
        await pilot.press(key)
        if isinstance(app.screen, HistoryScreen | AuditScreen):
            await app.screen.loaded.wait()
    for _ in range(200):
        screen = app.screen
        if isinstance(screen, DetailScreen):
            await screen.loaded.wait()
            break
        if isinstance(screen, HistoryScreen | AuditScreen):
            await screen.loaded.wait()
            break
        # K and a (on the fixture's first row, high risk) open a confirm after a read.
        if view.keys[-1:] not in (("K",), ("a",)) or isinstance(screen, ConfirmModal):
            break
        await pilot.pause(0.01)
    await pilot.pause()
    await settle(app)


async def settle(app: OperatorApp) -> None:
    """Until the tables and the event tail have done their deferred layout work (on a busy
    machine a screenshot could otherwise catch a column before its final width)."""
    widgets: list[PaneTable | EventTail] = [
        *app.dashboard.query(PaneTable),
        app.dashboard.query_one(EventTail),
    ]
    if app.screen is not app.dashboard:
        widgets += app.screen.query(PaneTable)
    for _ in range(500):
        if all(w.settled for w in widgets if w.display):
            return
        await asyncio.sleep(0.01)


def build_fixtures(root: Path) -> dict[bool, Path]:
    """Both fixture databases under ``root``: {observe: directory holding operator.db}."""
    dirs = {False: root / "execute", True: root / "observe"}
    for observe, directory in dirs.items():
        directory.mkdir(parents=True, exist_ok=True)
        asyncio.run(build_fixture(directory / DB_NAME, observe=observe))
    return dirs


@contextlib.contextmanager
def steady_cursor() -> Iterator[None]:
    """No blinking cursor in a screenshot."""
    toggle = Input._toggle_cursor
    Input._toggle_cursor = lambda self: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        Input._toggle_cursor = toggle  # type: ignore[method-assign]


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """The header shows the database path as given: run from its directory so it reads
    ``operator.db`` whatever the temporary directory was."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


async def capture(view: View, size: tuple[int, int]) -> str:
    app = fixture_app(DB_NAME)
    async with app.run_test(size=size) as pilot:
        await reach(pilot, view)
        return app.export_screenshot()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    # The fixture's clock is frozen; a checkpoint's real time in the header would not be.
    os.environ["OPERATOR_AUDIT_CHECKPOINT_DIR"] = "off"
    with tempfile.TemporaryDirectory() as tmp, steady_cursor():
        dirs = build_fixtures(Path(tmp))
        for name, (width, height) in SCREENSHOTS:
            view = VIEWS[name]
            with working_directory(dirs[view.observe]):
                svg = asyncio.run(capture(view, (width, height)))
            path = out / f"{name}-{width}x{height}.svg"
            path.write_text(svg)
            print(path)
        automations = build_automation_fixture_dir(Path(tmp))
        for name, (width, height) in AUTOMATION_SCREENSHOTS:
            with working_directory(automations):
                svg = asyncio.run(capture_automations(AUTOMATION_VIEWS[name], (width, height)))
            path = out / f"{name}-{width}x{height}.svg"
            path.write_text(svg)
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
