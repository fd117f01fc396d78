"""The Running pane and the header's runners: what executes now, on which runner, and a
cancel that the runner carries out (a real Runner in-process, a real subprocess)."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import timedelta
from pathlib import Path

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db import heartbeats
from operator_core.db.actions import ActionDB
from operator_core.model.types import ActionStatus
from operator_core.runner import Runner
from operator_core.subjects.runbook import RunbookSubject
from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import FIXTURE_NOW, RUNNER, fixture_app
from operator_tui.format import clip
from operator_tui.panes import PaneTable
from operator_tui.screens.confirm import ConfirmModal
from textual.widgets import Static
from tui_helpers import approve_confirmed, eventually, plain, read_proposal

from tests.support.rows import rows

SLEEPY = """
[actions.sleepy]
description = "Sleeps for a long while"
argv = [{sleep}, "30"]
timeout = 60
"""


def header_runners(app: OperatorApp) -> str:
    return plain(app.dashboard.query_one("#runners", Static)).strip()


def cells(app: OperatorApp, key: str) -> list[str]:
    pane = app.dashboard.query_one("#running", PaneTable)
    return [getattr(c, "plain", str(c)) for c in pane.row_cells(key)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


async def test_the_running_pane_shows_the_executing_step_with_its_runner(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_loaded()
        await pilot.press("2")
        assert app.focused is not None and app.focused.id == "running"
        target = app.dashboard.current_target()
        assert target is not None
        p = await read_proposal(db_path, target.id)
        assert p.status == ActionStatus.EXECUTING and p.claimed_by == RUNNER
        row = cells(app, target.key)
        assert row[2] == "▶ executing" and row[6] == RUNNER
        assert row[3] == "15s ago"  # claimed 0.25 min before FIXTURE_NOW
        assert row[4] == "in 15s"  # a 30 s lease
        assert row[5] == f"1 of {p.max_retries + 1}"
        assert header_runners(app) == "● 1 runner"


async def test_no_runner_is_red_when_approved_work_is_due(db_path: Path) -> None:
    """A runner that stopped, and approved work due: the header says no runner will take it."""
    async with ActionDB(db_path) as db:
        await db.write(heartbeats.stopped, RUNNER, FIXTURE_NOW - timedelta(seconds=3))
    app = fixture_app(db_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_loaded()
        assert header_runners(app) == "○ no runner"  # nothing due: no alarm
        top = app.dashboard.current_target()
        assert top is not None and top.kind == "action"
        await approve_confirmed(pilot)  # high risk, confirmed: due at once
        await eventually(
            lambda: "no runner" in header_runners(app) and "due" in header_runners(app)
        )
        assert app.dashboard.query_one("#runners").has_class("-stranded")
        await pilot.press("2")
        assert top.key in [str(r.key.value) for r in app.focused.ordered_rows]  # type: ignore[union-attr]
        assert [cells(app, top.key)[i] for i in (2, 6)] == ["· ready", "waiting for a runner"]


async def test_a_silent_runner_is_gone_from_the_header_as_the_clock_moves(db_path: Path) -> None:
    """A runner that crashed writes nothing: the header drops it from the clock alone."""
    app = fixture_app(db_path, tick_interval=0.05)
    async with app.run_test(size=(120, 40)):
        await app.wait_loaded()
        assert header_runners(app) == "● 1 runner"
        app.clock.set(FIXTURE_NOW + timedelta(seconds=heartbeats.ALIVE_WITHIN))  # type: ignore[attr-defined]
        await eventually(lambda: header_runners(app) == "○ no runner")


async def test_c_on_a_running_action_stops_it_through_its_runner(tmp_path: Path) -> None:
    book = tmp_path / "sleepy.toml"
    book.write_text(SLEEPY.format(sleep=f'"{shutil.which("sleep")}"'))
    subject = RunbookSubject(book, "runbook")
    db = tmp_path / "ops.db"
    registry = ActionRegistry.from_subject(subject)
    async with ActionExecutor(db, registry, approval_mode=False) as ex:
        p = await ex.propose_action("sleepy", {}, reason="a long job")
        assert p.id is not None
        if p.awaiting_approval:
            await ex.approve_proposal(p.id, "alice@ops")
    # Closed at the end: an executor left open keeps its connection's thread, and the test
    # process then never exits.
    executor = ActionExecutor(db, registry, approval_mode=False)
    runner = Runner(executor, poll_interval=0.05, grace_seconds=1.0)
    task = asyncio.create_task(runner.run())
    try:
        started = "SELECT pid FROM action_records WHERE proposal_id = ? AND pid IS NOT NULL"
        await eventually(lambda: bool(rows(db, started, (p.id,))), timeout=10, what="the command")
        command = rows(db, started, (p.id,))[0][0]
        assert alive(command)
        app = OperatorApp(db, subject=subject, actor="oncall@box", approval_mode=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await app.wait_loaded()
            await pilot.press("2")
            assert header_runners(app) == "● 1 runner"
            target = app.dashboard.current_target()
            assert target is not None and target.id == p.id
            assert cells(app, target.key)[6] == clip(runner.runner_id, 28)
            await pilot.press("c")
            await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
            body = plain(app.screen.query_one("#confirm-body", Static))
            assert "executing now" in body and "stop it" in body
            await pilot.press("y")

            async def ended() -> bool:
                return (await read_proposal(db, p.id)).status == ActionStatus.CANCELLED

            await eventually(ended, timeout=10, what="the runner's cancelled record")
            await eventually(lambda: app.dashboard.current_target() is None, what="the row to go")
        [done] = rows(db, "SELECT * FROM action_proposals WHERE id = ?", (p.id,))
        assert done["cancelled_by"] == "oncall@box" and done["claimed_by"] is None
        [record] = rows(db, "SELECT * FROM action_records WHERE proposal_id = ?", (p.id,))
        assert record["success"] == 0 and record["completed_at"] is not None
        await eventually(lambda: not alive(command), timeout=5, what="the command to end")
        audit = "SELECT event_type FROM action_audit_log WHERE proposal_id = ? ORDER BY id"
        events = [r[0] for r in rows(db, audit, (p.id,))]
        assert "cancel_requested" in events and events[-1] == "cancelled"
    finally:
        runner.request_stop()
        await asyncio.wait_for(task, 10)
        await executor.close()


async def test_approved_work_whose_budget_is_spent_says_when_its_slot_opens(
    db_path: Path,
) -> None:
    """A runner found the action's execution budget spent (the row it writes in the claim):
    the queued row says so, and counts down, instead of "waiting for a runner"."""
    app = fixture_app(db_path, tick_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_loaded()
        top = app.dashboard.current_target()
        assert top is not None and top.kind == "action"
        await approve_confirmed(pilot)  # high risk, confirmed
        p = await read_proposal(db_path, top.id)
        await pilot.press("2")
        await eventually(lambda: cells(app, top.key)[2] == "· ready")
        slot = FIXTURE_NOW + timedelta(minutes=12)
        rows(
            db_path,
            "INSERT INTO budget_waits VALUES (?, 2, 3600, 2, ?, ?)",
            (p.action_name, slot.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), "x"),
        )
        await eventually(lambda: cells(app, top.key)[2] == "⧗ budget")
        assert cells(app, top.key)[6] == "budget: next slot in 12m"
        app.clock.set(slot - timedelta(seconds=192))  # type: ignore[attr-defined]
        await eventually(lambda: cells(app, top.key)[6] == "budget: next slot in 3m12s")
