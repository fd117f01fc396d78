"""The Audit view (``L``): the audit log newest at the bottom, filtered, paged up by keyset,
paused while scrolled back with a count of what waits, and jumping to an event's action or
workflow; and ``:`` with a name, which goes to any pane or view."""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_core.db import audit_view
from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import fixture_app
from operator_tui.panes.audit import AuditTable
from operator_tui.screens.audit import AuditScreen
from operator_tui.screens.detail import DetailScreen
from operator_tui.screens.history import HistoryScreen
from tui_helpers import eventually, other_executor, toasts

from tests.support.rows import rows

SIZE = (120, 40)
EVENTS_SQL = """
SELECT a.id, a.event_type, a.actor, a.proposal_id,
    COALESCE(a.workflow_id, p.workflow_id) AS workflow_id
FROM action_audit_log a LEFT JOIN action_proposals p ON p.id = a.proposal_id ORDER BY a.id
"""


def shown(app: OperatorApp) -> list[int]:
    table = app.screen.query_one(AuditTable)
    return [int(str(r.key.value)[1:]) for r in table.ordered_rows if r.key.value != "-empty-"]


def title(app: OperatorApp) -> str:
    table = app.screen.query_one(AuditTable)
    return f"{table.border_title} | {table.border_subtitle}"


async def open_audit(app: OperatorApp, pilot) -> AuditScreen:  # type: ignore[no-untyped-def]
    await app.wait_loaded()
    await pilot.press("L")
    await eventually(lambda: isinstance(app.screen, AuditScreen), what="the Audit view")
    screen = app.screen
    assert isinstance(screen, AuditScreen)
    await screen.loaded.wait()
    await pilot.pause()
    return screen


async def test_L_shows_the_newest_events_at_the_bottom_and_follows(db_path: Path) -> None:
    expected = [r["id"] for r in rows(db_path, EVENTS_SQL)]
    assert len(expected) > SIZE[1]
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_audit(app, pilot)
        got = shown(app)
        assert got == expected[-len(got) :] and len(got) >= 20
        table = app.screen.query_one(AuditTable)
        assert table.cursor_row == table.row_count - 1
        assert "following" in title(app)
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.dashboard, what="back to the dashboard")


async def test_reaching_the_first_row_reads_older_events_up_to_the_start(db_path: Path) -> None:
    expected = [r["id"] for r in rows(db_path, EVENTS_SQL)]
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_audit(app, pilot)
        for _ in range(20):
            if shown(app) == expected:
                break
            screen.loaded.clear()
            await pilot.press("g")
            await screen.loaded.wait()
            await pilot.pause()
        assert shown(app) == expected
        assert "the start" in title(app)
        assert "paused" in title(app)  # the cursor is on the first row, not the last


async def test_a_filter_by_actor_type_or_action_shows_only_those_events(db_path: Path) -> None:
    events = rows(db_path, EVENTS_SQL)
    exhausted = [r["id"] for r in events if r["event_type"] == "retry_exhausted"]
    assert exhausted
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_audit(app, pilot)
        screen.loaded.clear()
        await pilot.press("slash", *"type:retry_ex", "enter")
        await screen.loaded.wait()
        await eventually(lambda: shown(app) == exhausted, what="only those events")
        assert "filter: type:retry_ex" in title(app)
        screen.loaded.clear()
        await pilot.press("escape")  # in the table: the filter goes, the view stays
        await screen.loaded.wait()
        assert isinstance(app.screen, AuditScreen)
        assert len(shown(app)) > len(exhausted) and "filter" not in title(app)
        runner = [r["id"] for r in events if r["actor"] == "runner"]
        screen.loaded.clear()
        await pilot.press("slash", *"actor:RUNNER type:complet", "enter")
        await screen.loaded.wait()
        completed = [r["id"] for r in events if r["event_type"] == "completed"]
        want = [i for i in runner if i in completed]
        assert want
        await eventually(lambda: shown(app) == want[-len(shown(app)) :], what="runner's")


async def test_enter_opens_the_events_action_and_w_its_workflow(db_path: Path) -> None:
    events = rows(db_path, EVENTS_SQL)
    step = next(r for r in reversed(events) if r["workflow_id"] and r["proposal_id"])
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_audit(app, pilot)
        ids = shown(app)
        assert step["id"] in ids, "the fixture's newest step event is on the first page"
        table = screen.query_one(AuditTable)
        table.move_cursor(row=ids.index(step["id"]), animate=False)
        await pilot.pause()
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, DetailScreen), what="the detail view")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        assert (detail.target.kind, detail.target.id) == ("action", step["proposal_id"])
        await pilot.press("escape")
        await eventually(lambda: app.screen is screen, what="back to the Audit view")
        await pilot.press("w")
        await eventually(lambda: isinstance(app.screen, DetailScreen), what="the workflow")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        assert (detail.target.kind, detail.target.id) == ("workflow", step["workflow_id"])


async def test_scrolled_back_it_pauses_and_counts_new_events_then_follows_again(
    db_path: Path,
) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_audit(app, pilot)
        before = shown(app)
        await pilot.press("k", "k")
        await eventually(lambda: "paused · 0 new" in title(app), what="paused")
        async with other_executor(db_path) as other:
            for i in range(3):
                await other.propose_action("drain_store", {"store_id": f"s{i}"}, reason="t")
        new = [r["id"] for r in rows(db_path, EVENTS_SQL) if r["id"] > before[-1]]
        assert len(new) >= 3
        await eventually(
            lambda: f"paused · {len(new)} new" in title(app), what="the count of new events"
        )
        assert shown(app) == before  # nothing moved under the cursor
        await pilot.press("G")
        await eventually(lambda: shown(app)[-len(new) :] == new, what="the new events")
        await eventually(lambda: "following" in title(app), what="following again")
        table = screen.query_one(AuditTable)
        assert table.cursor_row == table.row_count - 1
        async with other_executor(db_path) as other:
            await other.propose_action("drain_store", {"store_id": "s9"}, reason="t")
        last = rows(db_path, EVENTS_SQL)[-1]["id"]
        await eventually(lambda: shown(app)[-1] == last, what="the next event, followed")
        assert table.cursor_row == table.row_count - 1


async def test_colon_goes_to_a_pane_or_view_by_unique_prefix(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.press("colon", *"aud", "enter")
        await eventually(lambda: isinstance(app.screen, AuditScreen), what="the Audit view")
        await pilot.pause()
        await pilot.press("colon", *"hist", "enter")
        await eventually(lambda: isinstance(app.screen, HistoryScreen), what="the History view")
        await pilot.pause()
        await pilot.press("colon", *"RETR", "enter")
        await eventually(lambda: app.screen is app.dashboard, what="the dashboard")
        assert app.dashboard.active == "retries"
        assert app.focused is app.dashboard.active_pane


async def test_colon_with_an_unknown_or_ambiguous_name_says_so_and_stays(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.press("colon", *"nowhere", "enter")
        await eventually(lambda: app.screen is app.dashboard, what="the prompt closed")
        await pilot.press("colon", "a", "enter")
        await eventually(lambda: app.screen is app.dashboard, what="the prompt closed")
        said = [m for _, _, m in toasts(app)]
        assert said[-2:] == [
            "No pane or view is called “nowhere”: try approvals, running, workflows, "
            "scheduled, retries, history, audit, automations.",
            "“a” could be approvals, audit, automations: type more of it.",
        ]
        assert all("\n" not in m for m in said)
        assert app.dashboard.active == "approvals"


async def test_the_command_palette_offers_the_audit_log_and_the_prompt(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        offered = {c.title: c for c in app.get_system_commands(app.dashboard)}
        assert {"Audit log", "Go to a pane or view by name"} <= set(offered)
        offered["Audit log"].callback()
        await eventually(lambda: isinstance(app.screen, AuditScreen), what="the Audit view")
        await pilot.pause()


async def test_a_click_on_the_event_tail_opens_the_audit_view(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.click("#events")
        await eventually(lambda: isinstance(app.screen, AuditScreen), what="the Audit view")
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        await screen.loaded.wait()
        assert shown(app)[-1] == rows(db_path, EVENTS_SQL)[-1]["id"]


async def test_a_rare_filter_goes_on_reading_up_until_it_finds_or_starts(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each read walks a few ids only (shrunk here): the view keeps reading older stretches
    by itself until it has found the events, and says when the log starts."""
    monkeypatch.setattr(audit_view, "WINDOW", 4)
    monkeypatch.setattr(audit_view, "BUDGET", 8)
    created = [r["id"] for r in rows(db_path, EVENTS_SQL) if r["event_type"] == "workflow_created"]
    assert len(created) == 2 and created[0] < 90
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_audit(app, pilot)
        await pilot.press("slash", *"type:workflow_cr", "enter")
        await eventually(lambda: shown(app) == created, what="both workflows' creation")
        await eventually(lambda: "the start" in title(app), what="the start of the log")
        assert screen.filter.event_type == "workflow_cr"


async def test_arrows_and_end_pause_and_follow_as_j_and_G_do(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_audit(app, pilot)
        table = screen.query_one(AuditTable)
        await pilot.press("up")
        await eventually(lambda: "paused" in title(app), what="paused")
        assert table.cursor_row == table.row_count - 2
        await pilot.press("pageup")
        await eventually(lambda: table.cursor_row < table.row_count - 10, what="a page up")
        await pilot.press("end")
        await eventually(lambda: "following" in title(app), what="following")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("space")  # events are not decided: nothing is marked
        await eventually(lambda: toasts(app), what="a toast")
        assert toasts(app)[-1][2] == "Marks are for the dashboard's panes, not the audit log."
        assert table.marked == {} and table.cursor_row == table.row_count - 1
