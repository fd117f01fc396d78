"""The dashboard shows an approval voided because what runs changed: the approvals row says
what changed, the detail view the reason and the fingerprint; approving it there binds the
approval to what runs now."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db import fingerprints
from operator_core.runner import Runner
from operator_core.subjects.runbook import RunbookSubject
from operator_tui.app import OperatorApp
from operator_tui.panes.base import PaneTable
from operator_tui.screens.detail import DetailScreen
from operator_tui.widgets.fixed_table import FixedTable
from textual.widgets import Static

from tests.tui.tui_helpers import eventually, plain, toasts

SIZE = (160, 48)
RUNBOOK = """
[actions.mark]
argv = ["true", @WORD@]
requires_approval = true
"""


def keys(app: OperatorApp) -> list[str]:
    pane = app.dashboard.query_one("#approvals", PaneTable)
    return [str(row.key.value) for row in pane.ordered_rows if row.key.value != "-empty-"]


def write(path: Path, word: str) -> None:
    path.write_text(RUNBOOK.replace("@WORD@", json.dumps(word)))


def executor(db: Path, runbook: Path) -> ActionExecutor:
    return ActionExecutor(
        db, ActionRegistry.from_subject(RunbookSubject(runbook)), approval_mode=False
    )


async def test_the_next_approver_sees_why_and_approves_what_runs_now(tmp_path: Path) -> None:
    db, runbook = tmp_path / "operator.db", tmp_path / "ops.toml"
    write(runbook, "before")
    async with executor(db, runbook) as ex:
        p = await ex.propose_action("mark", {}, "mark it")
        assert p.id is not None
        await ex.approve_proposal(p.id, "alice")
    write(runbook, "after")
    async with executor(db, runbook) as ex:
        await Runner(ex, poll_interval=0.05, grace_seconds=1.0).run(until_idle=True)

    app = OperatorApp(db, subject=RunbookSubject(runbook), approval_mode=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        table = app.dashboard.query_one("#approvals", FixedTable)
        await eventually(lambda: table.row_count >= 1, what="the approvals row")
        row = " ".join(str(c) for c in table.get_row_at(0))
        assert "⚠ changed since approval: argv[1] 'before' -> 'after'" in row, row
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, DetailScreen), what="the detail view")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await detail.loaded.wait()
        body = plain(detail.query_one("#detail-body", Static))
        assert "what runs changed since approval: argv[1] 'before' -> 'after'" in body, body
        assert "Fingerprint" not in body  # nothing is bound until someone approves again
        await pilot.press("escape")
        await eventually(lambda: not isinstance(app.screen, DetailScreen), what="the dashboard")
        await pilot.press("a")
        await eventually(lambda: not keys(app), what="the approved row to leave #approvals")
        assert any("Approved action #1" in t[2] for t in toasts(app))
    # Read with plain sqlite3: no connection thread outlives the test.
    conn = sqlite3.connect(db)
    try:
        bound = fingerprints.binding(conn, p.id)
        (approved_at,) = conn.execute(
            "SELECT approved_at FROM action_proposals WHERE id = ?", (p.id,)
        ).fetchone()
    finally:
        conn.close()
    assert approved_at is not None
    assert bound.voided is None and bound.sha256 is not None
    assert bound.canonical is not None and "true after" in bound.canonical
