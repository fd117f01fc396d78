"""What ``a`` asks first, and the keys not offered where they cannot apply, asserted on the
database afterwards: a high-risk action asks (naming it, with what it runs), low and medium
are one key, a workflow step offers its workflow, and a confirm is never answered by keys
typed before it opened."""

from __future__ import annotations

from pathlib import Path

from operator_core.db.actions import ActionDB
from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import OPERATOR, fixture_app
from operator_tui.panes import PaneTable
from operator_tui.screens.confirm import ConfirmModal
from operator_tui.widgets.key_footer import KeyFooter
from textual.pilot import Pilot
from textual.widgets import Static
from tui_helpers import eventually, plain, read_proposal, toasts

SIZE = (100, 30)


async def _state(path: Path) -> tuple[object, ...]:
    """Everything a decision would change: the counts, and every audit event."""
    async with ActionDB(path) as db:
        events = await db.list_audit_events(limit=100_000)
        return (await db.counts(), [(e.event_type, e.proposal_id) for e in events])


async def start(pilot: Pilot[None], pane: str = "approvals", row: str | None = None) -> PaneTable:
    """The dashboard loaded and its risks read, ``pane`` focused, the cursor on ``row``."""
    app = pilot.app
    assert isinstance(app, OperatorApp)
    await app.wait_loaded()
    await app.started.wait()
    await pilot.press(str(1 + ["approvals", "running", "workflows"].index(pane)))
    table = app.dashboard.query_one(f"#{pane}", PaneTable)
    if row is not None:
        table.move_cursor(row=table.get_row_index(row), animate=False)
    await pilot.pause()
    return table


def footer(app: OperatorApp) -> str:
    return app.screen.query_one(KeyFooter).render().plain


def confirm_body(app: OperatorApp) -> str:
    return plain(app.screen.query_one("#confirm-body", Static))


async def test_high_risk_approve_asks_first_naming_it_with_its_preview(db_path: Path) -> None:
    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, row="p24")  # drain_store, high risk
        await pilot.press("a")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        body = confirm_body(app)
        assert "#24 drain_store is HIGH risk" in body
        assert "demo cluster: drain_store(store_id='s5')" in body  # what the detail view shows
        assert "store_id=s5" in body
        await pilot.press("n")  # declined: nothing changes
        await eventually(lambda: app.screen is app.dashboard, what="the dashboard")
        await pilot.pause()
        assert await _state(db_path) == before
        assert (await read_proposal(db_path, 24)).approved_at is None
        await pilot.press("a")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.press("y")
        await eventually(
            lambda: "p24" not in [str(r.key.value) for r in app.dashboard.active_pane.ordered_rows]
        )
    assert (await read_proposal(db_path, 24)).approved_by == OPERATOR


async def test_medium_risk_approve_is_one_key(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        pane = await start(pilot, row="p27")  # transfer_leader, medium risk
        await pilot.press("a")
        assert not isinstance(app.screen, ConfirmModal)
        await eventually(lambda: "p27" not in [str(r.key.value) for r in pane.ordered_rows])
    assert (await read_proposal(db_path, 27)).approved_by == OPERATOR


async def test_a_on_a_workflow_step_offers_its_workflow(db_path: Path) -> None:
    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, pane="workflows", row="p29")  # step 2 of wf2
        assert "Approve" in footer(app)
        await pilot.press("a")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        dialog = app.screen.query_one("#confirm-dialog")
        assert "wf2" in str(dialog.border_title)
        body = confirm_body(app)
        assert "#29 is step 2 of workflow wf2" in body
        assert "approves all 3 steps" in body
        for step in ("1. #28 drain_store", "2. #29 transfer_leader", "3. #30 check_health"):
            assert step in body
        await pilot.press("n")
        await eventually(lambda: app.screen is app.dashboard, what="the dashboard")
        assert await _state(db_path) == before
        await pilot.press("a")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.press("y")
        await eventually(
            lambda: any(m == "Approved workflow wf2 evacuate-s3" for *_, m in toasts(app))
        )
    async with ActionDB(db_path) as db:
        wf = await db.get_workflow(2)
        steps = await db.list_workflow_actions(2)
    assert wf is not None and wf.approved_by == OPERATOR
    assert [s.approved_by for s in steps] == [OPERATOR] * 3


async def test_keys_that_cannot_apply_are_not_offered_and_say_why(db_path: Path) -> None:
    """An executing step: no approve or reject in the footer; a finished one: no cancel.
    Pressed anyway, one line, and nothing changes."""
    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, pane="workflows", row="p19")  # executing
        line = footer(app)
        assert "Approve" not in line and "Reject" not in line and "Cancel" in line
        await pilot.press("a")
        await eventually(lambda: any(t == "Not now" for _, t, _ in toasts(app)))
        assert app.screen is app.dashboard
        said = [m for _, t, m in toasts(app) if t == "Not now"]
        assert said == [
            "action #19 transfer_leader is a step of wf1, which is not awaiting approval: "
            "nothing to approve."
        ]
        pane = app.dashboard.active_pane
        pane.move_cursor(row=pane.get_row_index("p18"), animate=False)  # completed
        await pilot.pause()
        assert "Cancel" not in footer(app)
        await pilot.press("c")
        await eventually(lambda: len([t for _, t, _ in toasts(app) if t == "Not now"]) == 2)
        assert app.screen is app.dashboard
        assert toasts(app)[-1][2] == "action #18 restart_store has finished: nothing to cancel."
    assert await _state(db_path) == before


async def test_observe_mode_offers_no_approve_and_refuses_it_in_one_line(db_path: Path) -> None:
    async with ActionDB(db_path) as db:  # OBSERVE without the kill switch's cancels
        await db.set_safety_mode("observe", "bob@ops-2", "maintenance")
    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, row="p27")  # medium: would be one key in EXECUTE
        line = footer(app)
        assert "Approve" not in line and "Reject" not in line
        await pilot.press("a")
        await pilot.press("r")
        await eventually(lambda: len([t for _, t, _ in toasts(app) if t == "Not now"]) == 2)
        assert app.screen is app.dashboard
        assert all("OBSERVE" in m for _, t, m in toasts(app) if t == "Not now")
    assert await _state(db_path) == before


async def test_keys_typed_with_a_never_answer_the_high_risk_confirm(db_path: Path) -> None:
    """``a`` then ``y`` in one burst (a paste): the confirm opens, the ``y`` typed before it
    was shown is dropped, said to be, and nothing is approved."""
    from test_tui_key_bursts import burst, settle

    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, row="p24")
        burst(app, "ay")
        await settle(app, ConfirmModal)
        assert isinstance(app.screen, ConfirmModal)
        assert any(t == "Keys ignored" for _, t, _ in toasts(app))
        assert await _state(db_path) == before
        await pilot.press("n")
    assert (await read_proposal(db_path, 24)).approved_at is None
