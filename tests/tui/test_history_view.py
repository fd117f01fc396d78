"""The History view: finished work newest first, paged, searched, and its detail view with
every attempt's exit code and output (a real runbook command run by the real Runner)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db import history
from operator_core.runner import Runner
from operator_core.subjects.runbook import RunbookSubject
from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import fixture_app
from operator_tui.panes.history import HistoryTable
from operator_tui.screens.detail import DetailScreen
from operator_tui.screens.history import HistoryScreen
from textual.widgets import Static
from tui_helpers import eventually, plain

from tests.support.rows import rows

SIZE = (120, 40)
FINISHED_SQL = """
SELECT id FROM action_proposals WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC
"""


def shown(app: OperatorApp) -> list[int]:
    table = app.screen.query_one(HistoryTable)
    return [int(str(r.key.value)[1:]) for r in table.ordered_rows if r.key.value != "-empty-"]


async def open_history(app: OperatorApp, pilot) -> HistoryScreen:  # type: ignore[no-untyped-def]
    await app.wait_loaded()
    await pilot.press("H")
    await eventually(lambda: isinstance(app.screen, HistoryScreen), what="the History view")
    screen = app.screen
    assert isinstance(screen, HistoryScreen)
    await screen.loaded.wait()
    await pilot.pause()
    return screen


async def test_history_lists_finished_work_newest_first(db_path: Path) -> None:
    expected = [r[0] for r in rows(db_path, FINISHED_SQL)]
    assert len(expected) > 10
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_history(app, pilot)
        assert shown(app) == expected
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.dashboard, what="back to the dashboard")


async def test_reaching_the_last_row_reads_the_next_page(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "PAGE", 5)
    expected = [r[0] for r in rows(db_path, FINISHED_SQL)]
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_history(app, pilot)
        assert shown(app) == expected[:5]
        await pilot.press("G")
        await eventually(lambda: shown(app) == expected[:10], what="the second page")
        for _ in range(len(expected) // 5 + 1):
            await pilot.press("G")
            await pilot.pause()
        await eventually(lambda: shown(app) == expected, what="every page")
        assert "the end" in str(screen.table.border_subtitle)


async def test_slash_searches_and_enter_opens_the_found_action(db_path: Path) -> None:
    wanted = [
        r[0]
        for r in rows(
            db_path,
            "SELECT id FROM action_proposals WHERE finished_at IS NOT NULL "
            "AND parameters LIKE '%s5%' ORDER BY finished_at DESC, id DESC",
        )
    ]
    assert wanted
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_history(app, pilot)
        await pilot.press("slash", "s", "5")
        await eventually(lambda: shown(app) == wanted, what="the search's rows")
        assert "search: s5" in str(screen.table.border_subtitle)
        await pilot.press("enter")  # keeps the search, back to the table
        await pilot.press("j", "enter")
        await eventually(lambda: isinstance(app.screen, DetailScreen), what="the detail view")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        assert detail.target.id == wanted[1]
        await detail.loaded.wait()
        await pilot.press("escape")
        await eventually(lambda: app.screen is screen)
        await pilot.press("escape")  # clears the search first
        await eventually(lambda: len(shown(app)) > len(wanted), what="the whole history")
        assert app.screen is screen


async def test_number_keys_leave_the_history_for_a_pane(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_history(app, pilot)
        await pilot.press("5")
        await eventually(lambda: app.screen is app.dashboard)
        assert app.focused is not None and app.focused.id == "retries"


BOOK = """
[actions.report]
description = "Prints a report and fails"
argv = [{sh}, "-c", "echo first line; echo second line; echo oops >&2; exit 3"]
timeout = 10
"""


async def test_the_detail_view_shows_each_attempts_exit_code_and_output(tmp_path: Path) -> None:
    book = tmp_path / "book.toml"
    book.write_text(BOOK.format(sh=f'"{shutil.which("sh")}"'))
    subject = RunbookSubject(book, "runbook")
    db = tmp_path / "ops.db"
    registry = ActionRegistry.from_subject(subject)
    async with ActionExecutor(db, registry, approval_mode=False) as ex:
        p = await ex.propose_action("report", {}, reason="nightly report", max_retries=0)
        assert p.id is not None
        if p.awaiting_approval:
            await ex.approve_proposal(p.id, "alice@ops")
        await Runner(ex, poll_interval=0.05, grace_seconds=1.0).run(until_idle=True)
    app = OperatorApp(db, subject=subject, actor="oncall@box", approval_mode=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_history(app, pilot)
        assert shown(app) == [p.id]
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, DetailScreen), what="the detail view")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await detail.loaded.wait()
        body = plain(detail.query_one("#detail-body", Static))
    assert "exit 3" in body
    assert "attempt 1 stdout" in body and "first line" in body and "second line" in body
    assert "attempt 1 stderr" in body and "oops" in body


async def test_c_on_finished_work_says_so_and_asks_nothing(db_path: Path) -> None:
    from operator_tui.screens.confirm import ConfirmModal
    from tui_helpers import toasts

    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_history(app, pilot)
        target = app.screen.query_one(HistoryTable).selected_target()
        assert target is not None
        await pilot.press("c")  # not offered on finished work: one line says why
        await eventually(
            lambda: any("nothing to cancel" in t[2] for t in toasts(app)), what="the refusal"
        )
        assert not isinstance(app.screen, ConfirmModal)
