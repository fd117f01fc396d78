"""Every key and dialog of the dashboard, asserted on the database afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db.actions import ActionDB
from operator_core.identity import current_identity
from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import FIXTURE_NOW, OPERATOR, FixtureSubject, fixture_app
from operator_tui.panes import PaneTable
from operator_tui.screens.confirm import ConfirmModal
from operator_tui.screens.detail import DetailScreen
from operator_tui.screens.help import HelpScreen
from operator_tui.screens.reject import RejectReasonModal
from rich.text import Text
from tui_helpers import approve_confirmed, eventually, plain, read_proposal, toasts

SIZE = (100, 30)


def selected(app: OperatorApp):  # type: ignore[no-untyped-def]
    target = app.dashboard.current_target()
    assert target is not None
    return target


async def start(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.app.wait_loaded()
    await pilot.pause()


async def test_approve_sets_approved_at_and_by(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        target = selected(app)
        assert target.kind == "action"
        await approve_confirmed(pilot)  # the fixture's first row is high risk
        await eventually(
            lambda: target.key not in _keys(app, "approvals"),
            what="the approved row to leave #approvals",
        )
        assert any("Approved" in msg for _, _, msg in toasts(app))
    p = await read_proposal(db_path, target.id)
    assert p.approved_by == OPERATOR
    assert p.approved_at == FIXTURE_NOW


async def test_approve_on_a_workflow_row_approves_the_whole_workflow(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("ctrl+end")
        target = selected(app)
        assert target.kind == "workflow"
        said = await approve_confirmed(pilot)  # a high-risk step: asks first, lists them
        assert "approves all 3 steps" in said and "drain_store" in said
        await eventually(lambda: target.key not in _keys(app, "approvals"))
    async with ActionDB(db_path) as db:
        wf = await db.get_workflow(target.id)
        steps = await db.list_workflow_actions(target.id)
    assert wf is not None and wf.approved_by == OPERATOR and wf.approved_at == FIXTURE_NOW
    assert steps and all(not s.awaiting_approval for s in steps)


async def test_reject_asks_for_a_reason_and_stores_it(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        target = selected(app)
        await pilot.press("r")
        await eventually(lambda: isinstance(app.screen, RejectReasonModal))
        await pilot.press("enter")  # an empty reason is refused in the dialog
        assert isinstance(app.screen, RejectReasonModal)
        await pilot.press(*"not during peak")
        await pilot.press("enter")
        await eventually(lambda: target.key not in _keys(app, "approvals"))
    p = await read_proposal(db_path, target.id)
    assert p.status.value == "cancelled"
    assert p.rejected_by == OPERATOR
    assert p.rejection_reason == "not during peak"


async def test_reject_dialog_escape_changes_nothing(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        target = selected(app)
        await pilot.press("r")
        await eventually(lambda: isinstance(app.screen, RejectReasonModal))
        await pilot.press(*"oops", "escape")
        await eventually(lambda: not isinstance(app.screen, RejectReasonModal))
    p = await read_proposal(db_path, target.id)
    assert p.rejected_at is None and p.awaiting_approval


async def test_reject_on_a_workflow_row_rejects_the_workflow(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("ctrl+end")
        target = selected(app)
        await pilot.press("r")
        await eventually(lambda: isinstance(app.screen, RejectReasonModal))
        await pilot.press(*"disk has room", "enter")
        await eventually(lambda: target.key not in _keys(app, "approvals"))
    async with ActionDB(db_path) as db:
        wf = await db.get_workflow(target.id)
    assert wf is not None
    assert wf.rejection_reason == "disk has room" and wf.rejected_by == OPERATOR


@pytest.mark.parametrize("answer", ["y", "n"])
async def test_cancel_asks_first(db_path: Path, answer: str) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        target = selected(app)
        await pilot.press("c")
        await eventually(lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press(answer)
        await eventually(lambda: not isinstance(app.screen, ConfirmModal))
        if answer == "y":
            await eventually(lambda: target.key not in _keys(app, "approvals"))
    p = await read_proposal(db_path, target.id)
    if answer == "y":
        assert p.status.value == "cancelled" and p.cancelled_at == FIXTURE_NOW
    else:
        assert p.status.value == "validated" and p.cancelled_at is None


async def test_cancel_on_a_workflow_row_cancels_the_workflow(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("3")  # #workflows: first row is the in-progress workflow
        target = selected(app)
        assert target.kind == "workflow"
        await pilot.press("c")
        await eventually(lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await eventually(lambda: target.key not in _keys(app, "workflows"))
    async with ActionDB(db_path) as db:
        wf = await db.get_workflow(target.id)
    assert wf is not None and wf.status.value == "cancelled"


async def test_kill_switch_confirms_then_cancels_everything(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("K")
        await eventually(lambda: isinstance(app.screen, ConfirmModal))
        body = plain(app.screen.query_one("#confirm-body"))
        assert "9 pending action(s)" in body
        assert "2 action(s) waiting for a retry" in body
        assert "2 open workflow(s)" in body
        assert "1 executing action(s)" in body
        await pilot.press("y")
        await eventually(
            lambda: app.dashboard.query_one("#header").has_class("-observe"),
            what="the OBSERVE banner",
        )
        assert app.dashboard.query_one("#banner").display
    async with ActionDB(db_path) as db:
        mode, _, by, _ = await db.get_safety_mode()
        assert (mode, by) == ("observe", f"{current_identity().text} ({OPERATOR})")
        assert await db.list_pending_approvals() == []
        assert await db.list_scheduled() == []
        assert await db.list_retry_backlog() == []
        assert await db.list_workflows(open_only=True) == []
        counts = await db.counts()
    assert counts.by_status.get("validated", 0) == 0


async def test_kill_switch_backed_out_changes_nothing(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("K")
        await eventually(lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("enter")  # the safe button has the focus
        await eventually(lambda: not isinstance(app.screen, ConfirmModal))
    async with ActionDB(db_path) as db:
        assert (await db.get_safety_mode())[0] == "execute"
        assert len(await db.list_pending_approvals()) == 3


async def test_resume_confirms_then_allows_execution(observe_db_path: Path) -> None:
    app = fixture_app(observe_db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        assert app.dashboard.query_one("#header").has_class("-observe")
        await pilot.press("E")
        await eventually(lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await eventually(lambda: not app.dashboard.query_one("#header").has_class("-observe"))
    async with ActionDB(observe_db_path) as db:
        mode, _, by, _ = await db.get_safety_mode()
    assert (mode, by) == ("execute", f"{current_identity().text} ({OPERATOR})")


async def test_engine_refusal_is_shown_and_changes_nothing(db_path: Path) -> None:
    """Another process cancels the selected action just before the operator approves it."""
    app = fixture_app(db_path, poll_interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        target = selected(app)
        # The cancel must not reach the screen before the key does (a poke would refresh the
        # pane first, and the key would then act on the row below).
        app.watcher.stop()
        other = ActionExecutor(db_path, ActionRegistry.from_subject(FixtureSubject()))
        async with other:
            await other.cancel_proposal(target.id, "bob@ops-2")
        await pilot.press("a")
        await eventually(lambda: any(sev == "error" for sev, _, _ in toasts(app)))
        severity, title, message = next(t for t in toasts(app) if t[0] == "error")
        assert title.startswith("Could not approve")
        assert "cancel" in message
    p = await read_proposal(db_path, target.id)
    assert p.status.value == "cancelled" and p.approved_at is None


async def test_approve_warns_once_when_another_process_moved_the_selection(db_path: Path) -> None:
    """The selected row leaves because another process cancelled it, and the cursor moves
    to the next row: an approve right then is a warning, not an approval of a row the
    operator may not have read; pressed again, it approves."""
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        gone = selected(app)
        async with ActionExecutor(db_path, ActionRegistry.from_subject(FixtureSubject())) as ex:
            await ex.cancel_proposal(gone.id, "bob@ops-2")
        await eventually(
            lambda: gone.key not in _keys(app, "approvals"),
            what="the cancelled row to leave #approvals",
        )
        moved_to = selected(app)
        assert moved_to != gone
        await pilot.press("a")
        await eventually(lambda: any(t == "Selection moved" for _, t, _ in toasts(app)))
        assert (await read_proposal(db_path, moved_to.id)).approved_at is None
        assert moved_to.key in _keys(app, "approvals")
        await approve_confirmed(pilot)  # pressed again: the row, high risk, asks first
        await eventually(
            lambda: moved_to.key not in _keys(app, "approvals"),
            what="the approved row to leave #approvals",
        )
    assert (await read_proposal(db_path, moved_to.id)).approved_by == OPERATOR


async def test_approving_row_after_row_needs_no_second_press(db_path: Path) -> None:
    """Our own approval moving the cursor is expected: the next approve acts at once."""
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        first = selected(app)
        await approve_confirmed(pilot)
        await eventually(lambda: first.key not in _keys(app, "approvals"))
        second = selected(app)
        await approve_confirmed(pilot)
        await eventually(lambda: second.key not in _keys(app, "approvals"))
        assert not any(t == "Selection moved" for _, t, _ in toasts(app))
    assert (await read_proposal(db_path, second.id)).approved_by == OPERATOR


MUTATION_KEYS = ["a", "r", "c", "K", "E"]


async def _state(path: Path) -> tuple[object, ...]:
    async with ActionDB(path) as db:
        return (
            await db.counts(),
            await db.get_safety_mode(),
            len(await db.list_audit_events(limit=100_000)),
        )


@pytest.mark.parametrize("via_env", [False, True])
async def test_read_only_refuses_every_mutation(
    db_path: Path, via_env: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if via_env:
        monkeypatch.setenv("OPERATOR_READ_ONLY", "1")
    before = await _state(db_path)
    app = fixture_app(db_path, read_only=not via_env)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        assert app.read_only
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.binding.show}
        assert not shown & {"approve", "reject", "cancel", "kill_switch", "resume"}
        for key in MUTATION_KEYS:
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is app.dashboard, f"{key} opened a dialog in read-only mode"
        refusals = [t for t in toasts(app) if t[1] == "Read-only"]
        assert len(refusals) == len(MUTATION_KEYS)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys_text = plain(app.screen.query_one("#help-keys"))
        assert "Approve" not in keys_text and "Filter" in keys_text
    assert await _state(db_path) == before


async def test_tab_and_shift_tab_move_between_panes(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        order = []
        for _ in range(5):
            order.append(app.focused.id if app.focused else None)
            visible = [p.id for p in app.dashboard.query(PaneTable) if p.display]
            assert visible == [order[-1]], "80 columns show only the active pane"
            await pilot.press("tab")
        assert order == ["approvals", "running", "workflows", "scheduled", "retries"]
        assert app.focused is not None and app.focused.id == "approvals"
        await pilot.press("shift+tab")
        assert app.focused is not None and app.focused.id == "retries"


async def test_wide_terminal_shows_all_five_panes(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await start(pilot)
        assert all(p.display for p in app.dashboard.query(PaneTable))
        assert not app.dashboard.query_one("#pane-tabs").display


async def test_enter_opens_the_detail_view(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("shift+tab")  # #retries: restart_store s4, three failed attempts
        await pilot.press("ctrl+end")
        target = selected(app)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await app.screen.loaded.wait()
        body = plain(app.screen.query_one("#detail-body"))
        assert "restart_store(store_id='s4')" in body  # the subject's preview
        assert "Store s4 unresponsive" in body  # ticket
        assert "Attempts (3)" in body and "did not come back" in body
        assert "retry_scheduled" in body  # audit events
        assert app.screen.current_target() == target
        await pilot.press("escape")
        assert app.screen is app.dashboard


async def test_filter_narrows_the_focused_pane_and_escape_clears(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        assert len(_keys(app, "approvals")) == 4
        await pilot.press("slash", *"restart")
        assert _keys(app, "approvals") == ["p26"]
        await pilot.press("enter")
        assert app.focused is app.dashboard.query_one("#approvals")
        title = str(app.dashboard.query_one("#approvals").border_title)
        assert title == "Approvals · 1 of 4 · filter: restart"  # kept, and said where seen
        await pilot.press("escape")
        assert len(_keys(app, "approvals")) == 4


async def test_help_is_generated_from_the_live_bindings(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = plain(app.screen.query_one("#help-keys"))
        for word in (
            "Approve",
            "Reject",
            "Cancel",
            "Kill",
            "Resume",
            "Details",
            "Filter",
            "Next pane",
            "Previous pane",
            "Help",
            "Quit",
        ):
            assert word in text
        await pilot.press("escape")
        assert app.screen is app.dashboard


async def test_q_quits(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


def _keys(app: OperatorApp, pane_id: str) -> list[str]:
    pane = app.dashboard.query_one(f"#{pane_id}", PaneTable)
    return [str(row.key.value) for row in pane.ordered_rows if row.key.value != "-empty-"]


async def test_agent_text_is_shown_as_written_never_as_markup(db_path: Path) -> None:
    """An agent's workflow name or reason with Rich markup in it must reach the approver as
    written: read as markup it could eat words or hide them (black on black)."""
    name = "[b]x[/b]"
    description = "[black on black]drop the table[/] then check"
    reason = "[black on black]drop the table[/] routine check"
    async with ActionExecutor(
        db_path, ActionRegistry.from_subject(FixtureSubject()), approval_mode=True
    ) as ex:
        wf = await ex.propose_workflow(
            name, description, [{"action_name": "check_health", "parameters": {}, "reason": reason}]
        )
    app = fixture_app(db_path)
    async with app.run_test(size=(240, 40)) as pilot:
        await start(pilot)
        pane = app.dashboard.query_one("#approvals", PaneTable)
        await eventually(lambda: f"w{wf}" in _keys(app, "approvals"))
        await pilot.pause()
        lines = "\n".join(pane.render_line(y).text for y in range(pane.size.height))
        assert f"workflow {name}" in lines and "[black on black]dro" in lines
        cell = pane.get_cell(f"w{wf}", "reason")  # wider than the pane shows
        assert isinstance(cell, Text) and cell.plain == description and not cell.spans
        pane.move_cursor(row=_keys(app, "approvals").index(f"w{wf}"))
        await pilot.press("c")
        await eventually(lambda: isinstance(app.screen, ConfirmModal))
        await pilot.pause()
        dialog = app.screen.query_one("#confirm-dialog")
        # The title is kept as markup with the name escaped: it reads as written.
        assert name in Text.from_markup(str(dialog.border_title)).plain
        await pilot.press("n")
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, DetailScreen))
        await eventually(
            lambda: description in plain(app.screen.query_one("#detail-body")),
            what="the description, as written, in the detail view",
        )
