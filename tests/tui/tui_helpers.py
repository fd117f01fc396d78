"""Helpers for the dashboard tests."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.clock import FrozenClock
from operator_core.db.actions import ActionDB
from operator_core.model.types import ActionProposal
from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import FIXTURE_NOW, FixtureSubject
from textual.pilot import Pilot


def other_executor(path: Path) -> ActionExecutor:
    """A second connection to the dashboard's database, as another process would open."""
    return ActionExecutor(
        path,
        ActionRegistry.from_subject(FixtureSubject()),
        approval_mode=True,
        clock=FrozenClock(FIXTURE_NOW),
    )


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], timeout: float = 3.0, what: str = "condition"
) -> float:
    """Poll ``check`` until true; returns the seconds it took."""
    start = time.monotonic()
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def read_proposal(path: Path, proposal_id: int) -> ActionProposal:
    async with ActionDB(path) as db:
        p = await db.get_proposal(proposal_id)
    assert p is not None
    return p


def toasts(app: OperatorApp) -> list[tuple[str, str, str]]:
    """(severity, title, message) of every notification shown so far."""
    return [(n.severity, n.title, n.message) for n in app._notifications]


def plain(widget: object) -> str:
    """The text a Static shows, whatever it was given (Rich renderables included)."""
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)  # type: ignore[attr-defined]
    return console.export_text()


async def approve_confirmed(pilot: Pilot[None]) -> str:
    """``a`` on a row that asks first (a high-risk action, a workflow), then ``y``; returns
    what the confirm said."""
    from operator_tui.screens.confirm import ConfirmModal
    from textual.widgets import Static

    app = pilot.app
    await pilot.press("a")
    await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the approve confirm")
    said = plain(app.screen.query_one("#confirm-body", Static))
    await pilot.press("y")
    return said
