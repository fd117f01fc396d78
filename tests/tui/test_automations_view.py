"""The Automations view (``A``) on a real SQLite file through Pilot: it lists what the
database holds, follows another process's changes, opens an execution's tree and an
automation's history, and its keys change state only through the executor after a confirm
(read-only refuses them). Snapshots of the view at three sizes, of the tree and of the
history, on the automations fixture."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.automations.definition import parse_definition
from operator_core.automations.validate import check_definition
from operator_core.cli.automations import new_version
from operator_core.clock import FrozenClock
from operator_tui.app import OperatorApp
from operator_tui.devtools.automation_fixture import DRAIN, HEALTH, RESTART
from operator_tui.devtools.automation_screens import (
    AUTOMATION_VIEWS,
    build_automation_fixture_dir,
    reach_automations,
)
from operator_tui.devtools.fixture import DB_NAME, FIXTURE_NOW, FixtureSubject, fixture_app
from operator_tui.screens.automation_detail import ExecutionScreen, HistoryScreen
from operator_tui.screens.automations import AutomationsScreen
from operator_tui.screens.confirm import ConfirmModal
from operator_tui.screens.dashboard import DashboardScreen
from operator_tui.screens.help import HelpScreen
from operator_tui.widgets.fixed_table import FixedTable
from textual import events
from textual.pilot import Pilot

from tests.tui.tui_helpers import eventually, plain, toasts

SIZES = {"80x24": (80, 24), "120x40": (120, 40), "160x48": (160, 48)}


@pytest.fixture(scope="session")
def automations_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The automations fixture (built once): five automations, five executions."""
    return build_automation_fixture_dir(tmp_path_factory.mktemp("automations"))


@pytest.fixture
def auto_db(tmp_path: Path, automations_dir: Path) -> Path:
    """A private copy of the automations fixture, for tests that change it."""
    path = tmp_path / DB_NAME
    shutil.copy(automations_dir / DB_NAME, path)
    return path


def one(db: Path, sql: str, *params: Any) -> Any:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(sql, params).fetchone()
    finally:
        conn.close()
    return row


def execution_status(db: Path, execution_id: int) -> str:
    return str(one(db, "SELECT status FROM automation_executions WHERE id = ?", execution_id)[0])


def proposal_status(db: Path, proposal_id: int) -> str:
    return str(one(db, "SELECT status FROM action_proposals WHERE id = ?", proposal_id)[0])


def enabled(db: Path, name: str) -> bool:
    return bool(one(db, "SELECT enabled FROM automations WHERE name = ?", name)[0])


async def open_view(pilot: Pilot[None]) -> AutomationsScreen:
    app = pilot.app
    assert isinstance(app, OperatorApp)
    await app.wait_loaded()
    await pilot.press("A")
    await eventually(lambda: isinstance(app.screen, AutomationsScreen), what="the view")
    screen = app.screen
    assert isinstance(screen, AutomationsScreen)
    await screen.loaded.wait()
    await pilot.pause()
    return screen


def table(screen: AutomationsScreen, which: str) -> FixedTable:
    return screen.query_one(f"#{which}-table", FixedTable)


def keys_of(t: FixedTable) -> list[str]:
    return [str(row.key.value) for row in t.ordered_rows]


def cell(t: FixedTable, key: str, column: str) -> str:
    value = t.get_cell(key, column)
    return str(getattr(value, "plain", value))


async def select(pilot: Pilot[None], screen: AutomationsScreen, which: str, key: str) -> None:
    """Focus a table and move its cursor onto ``key`` with the arrow keys."""
    t = table(screen, which)
    if not t.has_focus:
        await pilot.press("shift+tab" if which == "automations" else "tab")
    assert t.has_focus
    for _ in range(t.row_count):
        if keys_of(t)[t.cursor_row] == key:
            return
        await pilot.press("down")
    raise AssertionError(f"no row {key} in {which}")


# ---------------------------------------------------------------------------- what it lists


async def test_A_opens_the_view_with_what_the_database_holds(tmp_path: Path) -> None:
    """Automations applied through the executor and an execution started by hand with
    run_automation, listed with their version, scope, trigger, status and progress."""
    path = tmp_path / DB_NAME
    clock = FrozenClock(FIXTURE_NOW)
    ex = ActionExecutor(
        path, ActionRegistry.from_subject(FixtureSubject()), approval_mode=False, clock=clock
    )
    async with ex:
        for data in (HEALTH, DRAIN, RESTART):
            d = parse_definition(data, "test")
            check_definition(d, ex.registry, "test")
            await ex.store_automation(d.name, new_version(d, "", None), "ana")
        ticket = await ex.open_ticket("disk full", severity="low")
        run = await ex.run_automation("restart-by-hand", ticket.id or 0, "ana")
        await ex.set_automation_enabled("health-after-critical", False, "ana")

    app = fixture_app(path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_view(pilot)
        autos = table(screen, "automations")
        assert keys_of(autos) == [
            "drain-flapping-store",
            "health-after-critical",
            "restart-by-hand",
        ]
        assert cell(autos, "drain-flapping-store", "scope") == "team storage"
        assert cell(autos, "drain-flapping-store", "trigger") == "incident_created"
        assert cell(autos, "health-after-critical", "enabled") == "✗ off"
        assert cell(autos, "restart-by-hand", "enabled") == "✓ on"
        assert cell(autos, "restart-by-hand", "last").startswith(f"#{run.id} · pending")
        assert cell(autos, "drain-flapping-store", "last") == "never"
        runs = table(screen, "executions")
        assert keys_of(runs) == [str(run.id)]
        assert cell(runs, str(run.id), "ticket") == f"#{ticket.id}"
        assert cell(runs, str(run.id), "automation") == "restart-by-hand v1"
        assert cell(runs, str(run.id), "status") == "· pending"
        assert cell(runs, str(run.id), "progress") == "0/3"
        await pilot.press("escape")
        await eventually(lambda: isinstance(app.screen, DashboardScreen), what="the dashboard")


async def test_with_no_automations_the_view_says_how_to_add_one(db_path: Path) -> None:
    app = fixture_app(db_path)  # the dashboard's fixture: actions and workflows only
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_view(pilot)
        title = plain(screen.query_one("#automations-title"))
        assert "Automations (0, 0 enabled)" in title
        assert "operator automations apply FILE" in title
        assert table(screen, "automations").row_count == 0
        assert table(screen, "executions").row_count == 0
        await pilot.press("x")
        await pilot.pause(0.1)
        assert app.screen is screen
        assert ("warning", "", "Select an execution first.") in toasts(app)


async def test_the_view_follows_another_process(auto_db: Path) -> None:
    app = fixture_app(auto_db)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_view(pilot)
        runs = table(screen, "executions")
        assert cell(runs, "5", "status") == "▶ running"
        ex = ActionExecutor(auto_db, ActionRegistry.from_subject(FixtureSubject()))
        async with ex:
            await ex.cancel_execution(5, "bob", "not needed")
        await eventually(
            lambda: cell(runs, "5", "status") == "⊘ cancelled", timeout=5, what="the change"
        )


async def test_enter_opens_the_execution_tree_and_the_history(auto_db: Path) -> None:
    app = fixture_app(auto_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_view(pilot)
        await select(pilot, screen, "executions", "2")
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, ExecutionScreen), what="the tree")
        detail = app.screen
        assert isinstance(detail, ExecutionScreen)
        await detail.loaded.wait()
        body = plain(detail.query_one("#automation-detail-body"))
        assert "└─ is-high  if severity = high  completed · took true" in body
        assert '[true] drain  action drain_store "Drain s5"  running · proposal #3' in body
        assert "[false] check  action check_health  skipped" in body
        assert "Proposals made (1)" in body
        await pilot.press("escape")
        await eventually(lambda: app.screen is screen, what="back to the view")

        await select(pilot, screen, "automations", "health-after-critical")
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, HistoryScreen), what="the history")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await history.loaded.wait()
        body = plain(history.query_one("#automation-detail-body"))
        assert "v2 (current)" in body
        assert "wait 10 minutes: 5 was too soon after a restart" in body
        assert body.index("v2 (current)") < body.index("first version")


async def test_help_lists_the_views_keys(auto_db: Path) -> None:
    app = fixture_app(auto_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_view(pilot)
        await pilot.press("question_mark")
        await eventually(lambda: isinstance(app.screen, HelpScreen), what="the help")
        keys = plain(app.screen.query_one("#help-keys"))
        for line in ("x  Cancel execution", "e  Enable/disable", "esc  Back"):
            assert line in keys
        assert "Approve" not in keys  # a, r and c act on the dashboard, not here


# ---------------------------------------------------------------------------- keys that act


async def test_x_cancels_the_execution_and_its_pending_proposal(auto_db: Path) -> None:
    app = fixture_app(auto_db)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_view(pilot)
        await select(pilot, screen, "executions", "2")
        await pilot.press("x")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        assert execution_status(auto_db, 2) == "RUNNING"  # nothing before the yes
        await pilot.press("y")
        await eventually(lambda: execution_status(auto_db, 2) == "CANCELLED", what="cancel")
        assert proposal_status(auto_db, 3) == "cancelled"
        await eventually(
            lambda: cell(table(screen, "executions"), "2", "status") == "⊘ cancelled",
            what="the row",
        )
        assert ("information", "", "Cancelled execution #2") in toasts(app)


async def test_x_and_e_act_from_the_detail_screens_too(auto_db: Path) -> None:
    app = fixture_app(auto_db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_view(pilot)
        await select(pilot, screen, "executions", "5")
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, ExecutionScreen), what="the tree")
        detail = app.screen
        assert isinstance(detail, ExecutionScreen)
        await detail.loaded.wait()
        await pilot.press("x")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.press("y")
        await eventually(lambda: execution_status(auto_db, 5) == "CANCELLED", what="cancel")
        await eventually(
            lambda: "⊘ cancelled" in plain(detail.query_one("#automation-detail-title")),
            what="the detail follows",
        )
        await pilot.press("escape")
        await eventually(lambda: app.screen is screen, what="back to the view")
        await select(pilot, screen, "automations", "restart-by-hand")
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, HistoryScreen), what="the history")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await history.loaded.wait()
        await pilot.press("e", "y")
        await eventually(lambda: not enabled(auto_db, "restart-by-hand"), what="disabled")
        await eventually(
            lambda: "disabled" in plain(history.query_one("#automation-detail-title")),
            what="the history follows",
        )


def burst(app: OperatorApp, keys: str) -> None:
    """Keys on the app's queue with no pause between them, as a terminal sends a chunk it
    read (Pilot's ``press`` waits after each key, which hides the race)."""
    for char in keys:
        key = events.Key(char, char)
        key.set_sender(app)
        app.post_message(key)


async def test_a_y_typed_with_x_or_e_never_answers_the_confirm(auto_db: Path) -> None:
    app = fixture_app(auto_db)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_view(pilot)
        await select(pilot, screen, "executions", "2")
        burst(app, "xy")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        await eventually(lambda: app.screen is screen, what="the dialog closed")
        await select(pilot, screen, "automations", "drain-flapping-store")
        burst(app, "ey")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        await pilot.pause(0.1)
    assert execution_status(auto_db, 2) == "RUNNING"
    assert enabled(auto_db, "drain-flapping-store")


async def test_n_at_the_confirm_changes_nothing(auto_db: Path) -> None:
    app = fixture_app(auto_db)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_view(pilot)
        await select(pilot, screen, "executions", "2")
        await pilot.press("x")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.press("n")
        await eventually(lambda: app.screen is screen, what="the dialog closed")
        await select(pilot, screen, "automations", "drain-flapping-store")
        await pilot.press("e")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.press("n")
        await eventually(lambda: app.screen is screen, what="the dialog closed")
        await pilot.pause(0.2)
    assert execution_status(auto_db, 2) == "RUNNING"
    assert proposal_status(auto_db, 3) == "validated"
    assert enabled(auto_db, "drain-flapping-store")


async def test_A_opens_nothing_over_a_dialog_nor_a_second_view(auto_db: Path) -> None:
    app = fixture_app(auto_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.wait_loaded()
        await pilot.press("K")  # the kill switch's dialog, over the dashboard
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the dialog")
        await pilot.press("A")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        await eventually(lambda: isinstance(app.screen, DashboardScreen), what="closed")
        screen = await open_view(pilot)
        await pilot.press("A")
        await pilot.pause(0.1)
        assert [s for s in app.screen_stack if isinstance(s, AutomationsScreen)] == [screen]
    assert execution_status(auto_db, 2) == "RUNNING"


async def test_e_disables_and_enables_an_automation(auto_db: Path) -> None:
    app = fixture_app(auto_db)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_view(pilot)
        await select(pilot, screen, "automations", "drain-flapping-store")
        await pilot.press("e", "y")
        await eventually(lambda: not enabled(auto_db, "drain-flapping-store"), what="disabled")
        autos = table(screen, "automations")
        await eventually(
            lambda: cell(autos, "drain-flapping-store", "enabled") == "✗ off", what="the row"
        )
        await select(pilot, screen, "automations", "stale-ticket-health")
        await pilot.press("e", "y")
        await eventually(lambda: enabled(auto_db, "stale-ticket-health"), what="enabled")
    # An execution in flight goes on: disabling stops only new ones.
    assert execution_status(auto_db, 2) == "RUNNING"


async def test_x_on_a_finished_execution_says_so_and_opens_nothing(auto_db: Path) -> None:
    app = fixture_app(auto_db)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_view(pilot)
        await select(pilot, screen, "executions", "1")
        await pilot.press("x")
        await pilot.pause(0.1)
        assert app.screen is screen
        assert any("is completed" in message for _, _, message in toasts(app))
    assert execution_status(auto_db, 1) == "COMPLETED"


async def test_read_only_refuses_x_and_e(auto_db: Path) -> None:
    app = fixture_app(auto_db, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_view(pilot)
        await select(pilot, screen, "executions", "2")
        await pilot.press("x")
        await select(pilot, screen, "automations", "drain-flapping-store")
        await pilot.press("e")
        await pilot.pause(0.1)
        assert app.screen is screen  # no confirm opened
        refused = [title for _, title, _ in toasts(app)]
        assert refused.count("Read-only") == 2
    assert execution_status(auto_db, 2) == "RUNNING"
    assert proposal_status(auto_db, 3) == "validated"
    assert enabled(auto_db, "drain-flapping-store")


# ---------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", list(SIZES))
def test_snapshot_of_the_view(
    size: str, snap_compare: Any, automations_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(automations_dir)
    view = AUTOMATION_VIEWS["automations"]
    assert snap_compare(
        fixture_app(DB_NAME),
        terminal_size=SIZES[size],
        run_before=lambda pilot: reach_automations(pilot, view),
    )


@pytest.mark.parametrize("name", ["execution-tree", "automation-history"])
def test_snapshot_of_the_details(
    name: str, snap_compare: Any, automations_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(automations_dir)
    view = AUTOMATION_VIEWS[name]
    assert snap_compare(
        fixture_app(DB_NAME),
        terminal_size=SIZES["120x40"],
        run_before=lambda pilot: reach_automations(pilot, view),
    )
