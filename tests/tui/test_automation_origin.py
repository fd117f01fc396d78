"""An action an automation proposed says where it came from where the approver decides: the
approvals pane names the automation, the detail view its version, node and execution."""

from __future__ import annotations

from pathlib import Path

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_tui.app import OperatorApp
from operator_tui.screens.detail import DetailScreen
from operator_tui.widgets.fixed_table import FixedTable
from textual.widgets import Static

from tests.automations.helpers import action, linear
from tests.automations.runs import run_idle, store
from tests.support.subjects import TestSubject
from tests.tui.tui_helpers import eventually, plain

SIZE = (160, 48)


async def test_the_approver_sees_which_automation_made_the_action(tmp_path: Path) -> None:
    db = tmp_path / "operator.db"
    ex = ActionExecutor(db, ActionRegistry.from_subject(TestSubject()), approval_mode=True)
    async with ex:
        await store(ex, linear(action("restart", "guarded"), name="heal-api"))
        await ex.open_ticket("api down", severity="high")
        await run_idle(ex)  # the runner's automation step proposes; approval holds it
        (made,) = await ex.db.list_proposals(limit=5)
    assert made.proposed_by == "automation:heal-api" and made.approved_at is None
    app = OperatorApp(db, subject=TestSubject(), approval_mode=True)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        table = app.dashboard.query_one("#approvals", FixedTable)
        await eventually(lambda: table.row_count >= 1, what="the approvals row")
        row = [str(c) for c in table.get_row_at(0)]
        assert "⚙ heal-api" in row, row
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, DetailScreen), what="the detail view")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await detail.loaded.wait()
        body = plain(detail.query_one("#detail-body", Static))
        assert "heal-api v1, node restart, execution #1 (running)" in body, body
