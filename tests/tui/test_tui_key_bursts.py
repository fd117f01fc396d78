"""Keys that arrive in one burst (a paste, SSH coalescing keystrokes): what follows a key that
opens a dialog, a screen or the filter goes to it, or is dropped, never to the dashboard.

Pilot's ``press`` waits for the app to go idle after every key, which hides the race: these
tests post every key event to the app before yielding once, as a terminal's read of one
chunk of input does, and check the database afterwards.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from operator_core.db.actions import ActionDB
from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import OPERATOR, fixture_app
from operator_tui.panes import PaneTable
from operator_tui.screens.confirm import ConfirmModal
from operator_tui.screens.detail import DetailScreen
from operator_tui.screens.help import HelpScreen
from operator_tui.screens.reject import RejectReasonModal
from textual import events
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input
from tui_helpers import eventually as _eventually
from tui_helpers import read_proposal, toasts

SIZE = (100, 30)
PATIENCE = 30.0
"""Seconds any wait here may take before it fails: a safety net on a busy machine, never a
measure of speed."""

_NAMES = {
    " ": "space",
    "/": "slash",
    "?": "question_mark",
    "\r": "enter",
    "\x1b": "escape",
    "\t": "tab",
}


async def eventually(check, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    await _eventually(check, timeout=PATIENCE, what=what)


def burst(app: OperatorApp, text: str) -> None:
    """Every character of ``text`` as a key event on the app's queue, with no pause between
    them (as the terminal driver sends a chunk it read)."""
    for char in text:
        key = events.Key(_NAMES.get(char, char), char)
        key.set_sender(app)
        app.post_message(key)


async def settle(app: OperatorApp, screen: type[Screen[object]] | None = None) -> None:
    """Until the burst is handled: the screen expected is up (if any) and the queues of the
    app, the screen on top and the dashboard beneath it (keys in flight there were the bug)
    are empty."""
    if screen is not None:
        await eventually(lambda: isinstance(app.screen, screen), what=f"{screen.__name__}")
    await eventually(
        lambda: all(
            not n._message_queue.qsize()
            for n in [
                app,
                *app.screen.walk_children(with_self=True),
                *app.dashboard.walk_children(with_self=True),
            ]
        ),
        what="every queue to drain",
    )
    for _ in range(3):
        await Pilot(app).pause()


async def _audit(path: Path) -> list[tuple[str, int | None, str]]:
    async with ActionDB(path) as db:
        events_ = await db.list_audit_events(limit=100_000)
    return [(e.event_type, e.proposal_id, e.actor) for e in events_]


async def _state(path: Path) -> tuple[object, ...]:
    async with ActionDB(path) as db:
        return (await db.counts(), await db.get_safety_mode(), await _audit(path))


async def rejected(path: Path, proposal_id: int) -> None:
    """Until the rejection is in the database: the dialog closes before the dashboard's
    worker has written it, and leaving the app too soon cancels that worker."""
    for _ in range(int(PATIENCE / 0.05)):
        if (await read_proposal(path, proposal_id)).rejected_at is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"action {proposal_id} was never rejected")


async def start(app: OperatorApp) -> None:
    await app.wait_loaded()
    await Pilot(app).pause()


def reason_field(app: OperatorApp) -> Input:
    assert isinstance(app.screen, RejectReasonModal)
    return app.screen.query_one("#reason", Input)


async def test_text_typed_with_r_goes_to_the_reason_and_approves_nothing(db_path: Path) -> None:
    """``r`` + ``bad idea`` in one burst: the ``a`` of "bad idea" approved the very action
    being rejected."""
    before = await _audit(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        target = app.dashboard.current_target()
        assert target is not None and target.kind == "action"
        burst(app, "rbad idea")
        await settle(app, RejectReasonModal)
        assert reason_field(app).value == "bad idea"
        assert await _audit(db_path) == before, "nothing was approved, cancelled or rejected"
        burst(app, "\r")
        await eventually(lambda: app.screen is app.dashboard, what="the dialog to close")
        await rejected(db_path, target.id)
    p = await read_proposal(db_path, target.id)
    assert p.approved_at is None
    assert p.rejection_reason == "bad idea" and p.rejected_by == OPERATOR
    assert [e for e, pid, _ in await _audit(db_path) if pid == target.id][-1] == "rejected"


async def test_r_reason_and_enter_in_one_burst_reject_with_that_reason(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        target = app.dashboard.current_target()
        assert target is not None
        burst(app, "rnot now\r")
        await eventually(
            lambda: app.screen is app.dashboard and app.refreshes > 1, what="the dialog to close"
        )
        await settle(app)
        await rejected(db_path, target.id)
    p = await read_proposal(db_path, target.id)
    assert p.approved_at is None and p.rejection_reason == "not now"


async def test_r_then_zq_types_into_the_reason_and_does_not_quit(db_path: Path) -> None:
    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        burst(app, "rzq")
        await settle(app, RejectReasonModal)
        assert app.is_running and app.return_code is None
        assert reason_field(app).value == "zq"
        burst(app, "\x1b")
        await eventually(lambda: app.screen is app.dashboard, what="the dialog to close")
    assert await _state(db_path) == before


async def test_text_typed_with_slash_goes_to_the_filter(db_path: Path) -> None:
    """``/`` + ``check``: the filter lost the text and the ``c`` asked to cancel."""
    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        burst(app, "/check")
        await settle(app)
        assert app.screen is app.dashboard, "no dialog opened"
        assert app.dashboard.filter_bar.value == "check"
        assert app.focused is app.dashboard.filter_bar
        pane = app.dashboard.query_one("#approvals", PaneTable)
        assert pane.filter_text == "check"
        burst(app, "\r")
        await settle(app)
        assert app.focused is pane and not app.dashboard.filter_bar.display
    assert await _state(db_path) == before


DAY = "bad day, cancel? yes"
"""An ``a`` (approve on the dashboard), a ``y`` (yes in a confirm dialog), a ``c`` (cancel) and
a ``?`` (help)."""

OPENERS = [
    pytest.param("c", ConfirmModal, id="c-cancel"),
    pytest.param("K", ConfirmModal, id="K-kill-switch"),
    pytest.param("?", HelpScreen, id="help"),
    pytest.param("\r", DetailScreen, id="enter-details"),
]


@pytest.mark.parametrize(("key", "opens"), OPENERS)
async def test_keys_typed_while_a_dialog_opens_are_dropped_never_answered(
    db_path: Path, key: str, opens: type[Screen[object]]
) -> None:
    """A dialog that asks a question (or a screen with keys of its own) is never answered by
    keys typed before it was shown: they are dropped, and said to be."""
    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        burst(app, key + DAY)
        await settle(app, opens)
        assert isinstance(app.screen, opens), "the dialog stays open, unanswered"
        assert any(title == "Keys ignored" for _, title, _ in toasts(app))
        assert app.is_running
    assert await _state(db_path) == before


async def test_resume_is_not_confirmed_by_keys_typed_before_its_dialog(
    observe_db_path: Path,
) -> None:
    before = await _state(observe_db_path)
    app = fixture_app(observe_db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        burst(app, "E" + DAY)
        await settle(app, ConfirmModal)
        assert isinstance(app.screen, ConfirmModal)
        burst(app, "n")
        await eventually(lambda: app.screen is app.dashboard, what="the dialog to close")
    assert await _state(observe_db_path) == before


async def test_text_after_a_refused_blank_reason_reaches_the_field(db_path: Path) -> None:
    """Enter on an empty reason is refused; what is typed right after it lands in the field,
    whether it comes in the same burst as the enter or as the ``r``."""
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        burst(app, "r")
        await settle(app, RejectReasonModal)
        burst(app, "\rfirst")
        await settle(app)
        assert reason_field(app).value == "first"
        assert "required" in str(app.screen.query_one("#reason-error").render())
        burst(app, "\x1b")
        await eventually(lambda: app.screen is app.dashboard, what="the dialog to close")
        burst(app, "r\rsecond")
        await settle(app, RejectReasonModal)
        assert reason_field(app).value == "second"


async def test_a_key_that_opens_nothing_drops_what_followed_and_keys_work_again(
    db_path: Path,
) -> None:
    """``r`` with nothing selected opens nothing: the keys after it are dropped (not acted
    on by the dashboard) and the dashboard takes keys again afterwards."""
    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await pilot.press("slash", *"no such row", "enter")
        assert app.dashboard.current_target() is None
        burst(app, "r?a")
        await settle(app)
        assert app.screen is app.dashboard, "the ? after the r opened nothing"
        assert any(title == "Keys ignored" for _, title, _ in toasts(app))
        assert await _state(db_path) == before
        await pilot.press("escape")  # clears the filter: a row is selected again
        assert app.dashboard.current_target() is not None
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert await _state(db_path) == before


async def test_keys_after_the_filters_enter_never_reach_the_filter(db_path: Path) -> None:
    """``/check`` enter ``abc``: the filter is "check", the bar is closed, and the keys typed
    behind the enter are neither typed into it nor acted on."""
    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        burst(app, "/restart\rabc")
        await settle(app)
        pane = app.dashboard.query_one("#approvals", PaneTable)
        assert pane.filter_text == "restart" and app.dashboard.filter_bar.value == "restart"
        assert app.focused is pane and not app.dashboard.filter_bar.display
    assert await _state(db_path) == before


async def test_the_filter_closes_when_the_focus_leaves_it(db_path: Path) -> None:
    """While the bar is open, keys are its own: tab (or a click on a pane) closes it, keeping
    the filter, rather than leaving it open with the dashboard taking keys."""
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await pilot.press("slash", *"restart", "tab")
        await pilot.pause()
        assert not app.dashboard.filter_bar.display
        assert app.dashboard.query_one("#approvals", PaneTable).filter_text == "restart"


async def test_keys_behind_a_submitted_reason_act_on_nothing(db_path: Path) -> None:
    """Reason, enter and more keys in one burst: the reason is what came before the enter; the
    ``a`` behind it does not approve the row the cursor moves to."""
    before = await _audit(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        target = app.dashboard.current_target()
        assert target is not None
        burst(app, "r")
        await settle(app, RejectReasonModal)
        burst(app, "ok\raaa")
        await eventually(lambda: app.screen is app.dashboard, what="the dialog to close")
        await settle(app)
        await rejected(db_path, target.id)
    p = await read_proposal(db_path, target.id)
    assert p.rejection_reason == "ok"
    assert [e for e, _, _ in (await _audit(db_path))[len(before) :]] == ["rejected"]


async def test_text_typed_with_r_in_the_detail_view_goes_to_the_reason(db_path: Path) -> None:
    """The detail view has the same keys: ``r`` + ``bad idea`` there approved the item shown."""
    before = await _audit(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, DetailScreen), what="the detail view")
        burst(app, "rbad idea")
        await settle(app, RejectReasonModal)
        assert reason_field(app).value == "bad idea"
    assert await _audit(db_path) == before


async def test_a_paste_right_after_r_goes_to_the_reason(db_path: Path) -> None:
    """A terminal with bracketed paste sends a paste as one event: it waits like a key."""
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        burst(app, "r")
        paste = events.Paste("bad idea")
        paste.set_sender(app)
        app.post_message(paste)
        await settle(app, RejectReasonModal)
        assert reason_field(app).value == "bad idea"


def test_textual_still_forwards_events_as_key_hold_expects() -> None:
    """``key_hold`` hands held keys on with Textual's private ``Widget._forward_event`` (the
    app's own way to give a key to the focused widget): if an upgrade moves it, say so."""
    from textual.widget import Widget

    assert callable(getattr(Widget, "_forward_event", None)), (
        "textual.widget.Widget._forward_event is gone: update operator_tui.key_hold._deliver"
    )


@pytest.mark.parametrize("then", ["r", "/"])
async def test_a_tab_in_the_same_burst_moves_on_before_the_key_opens(
    db_path: Path, then: str
) -> None:
    """tab, then ``r`` or ``/`` and text, in one burst: ``r`` is about the next pane's row
    (executing there, so it is refused in one line and the text after it is dropped), the
    filter is the next pane's and the text goes to it (the pane's focus, set one message
    later, took the focus back from the filter bar and its text was dropped)."""
    before = await _audit(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await start(app)
        burst(app, f"\t{then}check")
        running = app.dashboard.query_one("#running", PaneTable)
        if then == "r":
            await settle(app)
            assert app.screen is app.dashboard and app.focused is running
            said = [m for _, title, m in toasts(app) if title == "Not now"]
            assert said == [
                "action #19 transfer_leader is a step of wf1, which is not awaiting approval: "
                "nothing to reject."
            ]
            assert any(title == "Keys ignored" for _, title, _ in toasts(app))
        else:
            await settle(app)
            assert app.dashboard.filter_bar.value == "check"
            assert running.filter_text == "check" and app.focused is app.dashboard.filter_bar
    assert await _audit(db_path) == before


async def test_keys_behind_the_answer_to_a_confirm_act_on_nothing(db_path: Path) -> None:
    """``y`` and ``a`` in one burst in the cancel dialog: the ``a`` was given to the dialog, and
    reached the dashboard's bindings once the ``y`` had closed it (bindings are looked up on
    the screen on top when a key gets back to the app): it tried to approve the row. A key
    acts only if the screen it was given to is still on top."""
    before = await _audit(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        target = app.dashboard.current_target()
        assert target is not None
        await pilot.press("c")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        await pilot.pause()
        burst(app, "yaa")
        await eventually(lambda: app.screen is app.dashboard, what="the dialog to close")
        await settle(app)
        assert any(title == "Keys ignored" for _, title, _ in toasts(app))
    after = (await _audit(db_path))[len(before) :]
    assert [(e, pid) for e, pid, _ in after] == [("cancelled", target.id)]


async def test_a_hold_that_never_ends_expires_and_keys_work_again(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An opening that never says it is ready (a bug) must not leave the dashboard deaf: after
    the hold's limit its keys are dropped, said to be, and the next keys work."""
    from operator_tui.key_hold import KeyHold

    monkeypatch.setattr(KeyHold, "limit", 0.2)
    before = await _state(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        hold = app.keys.begin()  # as a binding that opens something, which then never does
        burst(app, "a")
        await eventually(lambda: app.keys.current is None, what="the hold to expire")
        assert hold.opened is False
        assert any(title == "Keys ignored" for _, title, _ in toasts(app))
        assert await _state(db_path) == before, "the held 'a' approved nothing"
        await pilot.press("question_mark")
        await eventually(lambda: isinstance(app.screen, HelpScreen), what="help, after the hold")
