"""The Automations view's screenshots and snapshot views, on the automations fixture
(``automation_fixture``): the list, an execution's tree, an automation's history. Written
by ``python -m operator_tui.devtools.screenshots`` with the dashboard's own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from textual.pilot import Pilot

from operator_tui.app import OperatorApp
from operator_tui.devtools.automation_fixture import build_automation_fixture
from operator_tui.devtools.fixture import DB_NAME, fixture_app
from operator_tui.screens.polled import PolledScreen


@dataclass(frozen=True)
class AutomationView:
    name: str
    keys: tuple[str, ...]


AUTOMATION_VIEWS = {
    view.name: view
    for view in (
        AutomationView("automations", ("A",)),
        # The cursor starts on the newest execution (#5, waiting on its delay); three down,
        # #2: a condition's two branches, an action waiting for its approval.
        AutomationView("execution-tree", ("A", "down", "down", "down", "enter")),
        AutomationView("automation-history", ("A", "shift+tab", "down", "enter")),
    )
}

AUTOMATION_SCREENSHOTS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("automations", (160, 48)),
    ("automations", (80, 24)),
    ("execution-tree", (120, 40)),
)


async def reach_automations(pilot: Pilot[None], view: AutomationView) -> None:
    """Wait for the dashboard's first paint, press the keys, wait for each screen opened to
    show its first read."""
    app = pilot.app
    assert isinstance(app, OperatorApp)
    await app.wait_loaded()
    for key in view.keys:
        await pilot.press(key)
        await pilot.pause()
        screen = app.screen
        if isinstance(screen, PolledScreen):
            await asyncio.wait_for(screen.loaded.wait(), 10)
    await pilot.pause()


def build_automation_fixture_dir(root: Path) -> Path:
    """A directory under ``root`` holding the automations fixture as ``operator.db``."""
    directory = root / "automations"
    directory.mkdir(parents=True, exist_ok=True)
    asyncio.run(build_automation_fixture(directory / DB_NAME))
    return directory


async def capture_automations(view: AutomationView, size: tuple[int, int]) -> str:
    app = fixture_app(DB_NAME)
    async with app.run_test(size=size) as pilot:
        await reach_automations(pilot, view)
        return app.export_screenshot()
