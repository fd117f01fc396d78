"""The dashboard on PostgreSQL (issue 26): the fixture's day written into a PostgreSQL
database through the engine, then every key that changes state pressed in a real dashboard
(Pilot) on its URL, and the database read afterwards; the header never shows the URL's
password; two dashboards and the CLI on one database see each other's changes."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db.pg.store import PgActionDB
from operator_core.db.url import NOWHERE, passwords, redact
from operator_core.runner import Runner
from operator_core.subjects.runbook import RunbookSubject
from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import OPERATOR, build_fixture, fixture_app
from operator_tui.panes import PaneTable
from operator_tui.panes.audit import AuditTable
from operator_tui.panes.history import HistoryTable
from operator_tui.screens.audit import AuditScreen
from operator_tui.screens.confirm import ConfirmModal
from operator_tui.screens.detail import DetailScreen
from operator_tui.screens.history import HistoryScreen
from operator_tui.screens.reject import RejectReasonModal
from operator_tui.widgets.status_header import MetaLine
from psycopg.rows import dict_row
from textual.widgets import Static
from tui_helpers import approve_confirmed, eventually, plain, toasts

from tests.e2e.conftest import cli_env

SIZE = (160, 50)


def pg_rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def proposal(url: str, pid: int) -> dict[str, Any]:
    [row] = pg_rows(url, "SELECT * FROM action_proposals WHERE id = %s", (pid,))
    return row


def keys_of(app: OperatorApp, pane: str) -> list[str]:
    table = app.dashboard.query_one(f"#{pane}", PaneTable)
    return [str(r.key.value) for r in table.ordered_rows if r.key.value != "-empty-"]


@pytest.fixture
async def fixture_url(pg_url: str) -> str:
    """The snapshot tests' fixture day, written into a fresh PostgreSQL database."""
    await build_fixture(pg_url)
    return pg_url


async def test_the_header_shows_the_url_with_its_password_hidden(fixture_url: str) -> None:
    secrets = passwords(fixture_url)
    assert secrets, "the test server's URLs carry a password"
    app = fixture_app(fixture_url)
    async with app.run_test(size=SIZE):
        await app.wait_loaded()
        shown = str(app.dashboard.query_one(MetaLine).render())
        assert redact(fixture_url) in shown
        screen = app.export_screenshot()
        assert all(s not in shown and s not in screen for s in secrets)
        assert redact(fixture_url).split("@", 1)[1] in screen


async def test_approve_and_reject_change_the_database(fixture_url: str) -> None:
    app = fixture_app(fixture_url)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        first, second, third = keys_of(app, "approvals")[:3]
        said = await approve_confirmed(pilot)  # #24 is high risk: it asks first
        assert f"#{first[1:]}" in said
        await eventually(lambda: first not in keys_of(app, "approvals"), what="the row to go")
        assert app.dashboard.current_target().key == second  # type: ignore[union-attr]
        # At once: the row left because of our own approval, not another process's change
        # (PostgreSQL's change counter counts our own commits too), so no "Selection moved".
        await approve_confirmed(pilot)  # #26: high risk too
        await eventually(lambda: second not in keys_of(app, "approvals"), what="the row to go")
        assert not [t for t in toasts(app) if t[1] == "Selection moved"]
        assert app.dashboard.current_target().key == third  # type: ignore[union-attr]
        await pilot.press("r")
        await eventually(lambda: isinstance(app.screen, RejectReasonModal), what="the prompt")
        await pilot.press(*"flaky", "enter")
        await eventually(lambda: third not in keys_of(app, "approvals"), what="the row to go")
    for key in (first, second):
        approved = proposal(fixture_url, int(key[1:]))
        assert approved["approved_by"] == OPERATOR and approved["rejected_at"] is None
    rejected = proposal(fixture_url, int(third[1:]))
    assert rejected["rejected_by"] == OPERATOR and rejected["approved_at"] is None
    assert rejected["rejection_reason"] == "flaky"


async def test_space_marks_rows_and_a_approves_exactly_the_marked(fixture_url: str) -> None:
    app = fixture_app(fixture_url)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        pane = app.dashboard.query_one("#approvals", PaneTable)
        keys = keys_of(app, "approvals")
        await pilot.press("space", "j", "space")  # space marks and moves down: #24, #27
        assert sorted(pane.marked) == sorted([keys[0], keys[2]])
        await pilot.press("a")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.press("y")
        await eventually(lambda: not pane.marked, what="the marks to clear")
        await eventually(lambda: keys_of(app, "approvals") == [keys[1], keys[3]])
    for key in keys:
        row = (
            pg_rows(fixture_url, "SELECT * FROM workflows WHERE id = %s", (int(key[1:]),))[0]
            if key.startswith("w")
            else proposal(fixture_url, int(key[1:]))
        )
        assert (row["approved_by"] == OPERATOR) == (key in (keys[0], keys[2])), key


async def test_a_workflow_is_approved_whole_and_its_detail_view_opens(fixture_url: str) -> None:
    app = fixture_app(fixture_url)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.press("3")  # the Workflows pane
        workflow = next(k for k in keys_of(app, "workflows") if k == "w2")
        while app.dashboard.current_target().key != workflow:  # type: ignore[union-attr]
            await pilot.press("j")
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, DetailScreen), what="the detail view")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await detail.loaded.wait()
        body = plain(detail.query_one("#detail-body", Static))
        assert "evacuate-s3" in body and "drain_store" in body
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.dashboard, what="back to the dashboard")
        said = await approve_confirmed(pilot)
        assert "wf2" in said
        await eventually(lambda: "w2" not in keys_of(app, "approvals"), what="wf2 to leave")
    [wf] = pg_rows(fixture_url, "SELECT * FROM workflows WHERE id = 2")
    assert wf["approved_by"] == OPERATOR
    steps = pg_rows(fixture_url, "SELECT approved_at FROM action_proposals WHERE workflow_id = 2")
    assert len(steps) == 3


async def test_history_search_finds_an_old_failed_action(fixture_url: str) -> None:
    failed = pg_rows(
        fixture_url,
        "SELECT id FROM action_proposals WHERE status = 'failed' AND finished_at IS NOT NULL "
        "AND parameters LIKE '%%s5%%' ORDER BY finished_at, id",
    )
    assert len(failed) >= 2, "the fixture's day has moves onto s5 failing for good"
    oldest = failed[0]["id"]
    app = fixture_app(fixture_url)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.press("H")
        await eventually(lambda: isinstance(app.screen, HistoryScreen), what="the History view")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await screen.loaded.wait()
        table = screen.query_one(HistoryTable)

        def shown() -> list[int]:
            keys = [str(r.key.value) for r in table.ordered_rows]
            return [int(k[1:]) for k in keys if k != "-empty-"]

        everything = shown()
        await pilot.press("slash", "s", "5")
        await eventually(
            lambda: {r["id"] for r in failed} <= set(shown()) and len(shown()) < len(everything),
            what="the search's rows",
        )
        assert "search: s5" in str(table.border_subtitle)
        await pilot.press("enter")  # keeps the search, back to the table
        for _ in range(len(shown())):
            if shown()[table.cursor_row] == oldest:
                break
            await pilot.press("j")
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, DetailScreen), what="the detail view")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await detail.loaded.wait()
        body = plain(detail.query_one("#detail-body", Static))
    assert detail.target.id == oldest
    assert "store s5 is down" in body


async def test_the_audit_view_filters_by_type_and_actor(fixture_url: str) -> None:
    events = pg_rows(fixture_url, "SELECT id, event_type, actor FROM action_audit_log ORDER BY id")
    exhausted = [r["id"] for r in events if r["event_type"] == "retry_exhausted"]
    assert exhausted
    app = fixture_app(fixture_url)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.press("L")
        await eventually(lambda: isinstance(app.screen, AuditScreen), what="the Audit view")
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        await screen.loaded.wait()
        table = screen.query_one(AuditTable)

        def shown() -> list[int]:
            return [
                int(str(r.key.value)[1:]) for r in table.ordered_rows if r.key.value != "-empty-"
            ]

        assert shown() == [r["id"] for r in events][-len(shown()) :]
        screen.loaded.clear()
        await pilot.press("slash", *"type:retry_ex", "enter")
        await screen.loaded.wait()
        await eventually(lambda: shown() == exhausted, what="only those events")
        screen.loaded.clear()
        await pilot.press("escape")
        await screen.loaded.wait()
        screen.loaded.clear()
        await pilot.press("slash", *"actor:RUNNER type:complet", "enter")
        await screen.loaded.wait()
        want = [
            r["id"] for r in events if r["actor"] == "runner" and r["event_type"] == "completed"
        ]
        assert want
        await eventually(lambda: shown() == want[-len(shown()) :] and shown(), what="runner's")


SLEEPY = """
[actions.sleepy]
description = "Sleeps for a long while"
argv = [{sleep}, "30"]
timeout = 60
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def pg_executor(url: str, registry: ActionRegistry) -> ActionExecutor:
    return ActionExecutor(NOWHERE, registry, approval_mode=False, db=PgActionDB(url))


async def test_c_on_a_running_action_stops_it_through_its_runner(
    pg_url: str, tmp_path: Path
) -> None:
    book = tmp_path / "sleepy.toml"
    book.write_text(SLEEPY.format(sleep=f'"{shutil.which("sleep")}"'))
    subject = RunbookSubject(book, "runbook")
    registry = ActionRegistry.from_subject(subject)
    async with pg_executor(pg_url, registry) as ex:
        p = await ex.propose_action("sleepy", {}, reason="a long job")
        assert p.id is not None
        if p.awaiting_approval:
            await ex.approve_proposal(p.id, "alice@ops")
    executor = pg_executor(pg_url, registry)
    runner = Runner(executor, poll_interval=0.05, grace_seconds=1.0)
    task = asyncio.create_task(runner.run())
    started = "SELECT pid FROM action_records WHERE proposal_id = %s AND pid IS NOT NULL"
    try:
        await eventually(
            lambda: bool(pg_rows(pg_url, started, (p.id,))), timeout=10, what="the command"
        )
        command = pg_rows(pg_url, started, (p.id,))[0]["pid"]
        assert alive(command)
        app = OperatorApp(pg_url, subject=subject, actor="oncall@box", approval_mode=False)
        async with app.run_test(size=SIZE) as pilot:
            await app.wait_loaded()
            await pilot.press("2")  # the Running pane
            target = app.dashboard.current_target()
            assert target is not None and target.id == p.id
            await pilot.press("c")
            await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
            body = plain(app.screen.query_one("#confirm-body", Static))
            assert "executing now" in body and "stop it" in body
            await pilot.press("y")
            await eventually(
                lambda: proposal(pg_url, p.id)["status"] == "cancelled",
                timeout=10,
                what="the runner's cancelled record",
            )
            await eventually(lambda: app.dashboard.current_target() is None, what="the row to go")
        done = proposal(pg_url, p.id)
        assert done["cancelled_by"] == "oncall@box" and done["claimed_by"] is None
        [record] = pg_rows(pg_url, "SELECT * FROM action_records WHERE proposal_id = %s", (p.id,))
        assert record["success"] == 0 and record["completed_at"] is not None
        await eventually(lambda: not alive(command), timeout=5, what="the command to end")
        audit = "SELECT event_type FROM action_audit_log WHERE proposal_id = %s ORDER BY id"
        events = [r["event_type"] for r in pg_rows(pg_url, audit, (p.id,))]
        assert "cancel_requested" in events and events[-1] == "cancelled"
    finally:
        runner.request_stop()
        await asyncio.wait_for(task, 10)
        await executor.close()


async def test_the_kill_switch_key_records_observe_and_resume_undoes_it(
    fixture_url: str,
) -> None:
    """The database part of the kill switch (the row every host reads); the kill file's
    PostgreSQL counterpart is another piece of issue 26."""
    pending = "SELECT id FROM action_proposals WHERE status IN ('proposed', 'validated')"
    assert pg_rows(fixture_url, pending)
    app = fixture_app(fixture_url)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.press("K")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.press("y")
        await eventually(lambda: any(t[1] == "Kill switch engaged" for t in toasts(app)))
        [safety] = pg_rows(fixture_url, "SELECT * FROM safety_state")
        assert safety["mode"] == "observe" and safety["changed_by"].endswith(f"({OPERATOR})")
        assert not pg_rows(fixture_url, pending)
        await eventually(lambda: app.dashboard.data.safety.observe, what="the OBSERVE banner")
        await pilot.press("E")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.press("y")
        await eventually(lambda: not app.dashboard.data.safety.observe, what="EXECUTE again")
    [safety] = pg_rows(fixture_url, "SELECT * FROM safety_state")
    assert safety["mode"] == "execute"


async def test_two_dashboards_and_the_cli_see_each_others_changes(
    fixture_url: str, tmp_path: Path
) -> None:
    one, two = fixture_app(fixture_url), fixture_app(fixture_url)
    async with one.run_test(size=SIZE) as pilot, two.run_test(size=SIZE):
        await one.wait_loaded()
        await two.wait_loaded()
        first = keys_of(one, "approvals")[0]
        assert keys_of(two, "approvals")[0] == first
        await approve_confirmed(pilot)
        took = await eventually(
            lambda: first not in keys_of(two, "approvals"), what="the other dashboard"
        )
        assert took < 2.0  # the poll every 0.5 s, then one read
        # A proposal from the CLI, another process, shows in both (the dashboards go on
        # running meanwhile: the process is awaited, not waited for).
        cli = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "operator_core.cli", "--db", fixture_url, "--subject"],
            *["demo", "--approval-mode", "on", "propose", "check_health", "--reason", "cli"],
            env=cli_env(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(cli.communicate(), 60)
        assert cli.returncode == 0, err.decode()
        new = f"p{int(out.split()[0])}"
        for app in (one, two):
            await eventually(lambda app=app: new in keys_of(app, "approvals"), what="the CLI's")
