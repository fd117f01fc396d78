"""OperatorApp: the dashboard. Reads through ActionDB, changes state only through
ActionExecutor (the same code path as the CLI), as ``user@host``.

One exclusive worker follows the database (``_follow``): it re-reads only when the
ChangeWatcher says something changed, never overlaps itself, and skips while a dialog is open.

The first frame is drawn from views of the rows (``operator_core.model.views``) before
pydantic is imported: the executor, the registry and the subject (whose definitions are
pydantic models) come right after it (``_started``), about 60 ms of a start-up here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from operator_core.clock import SYSTEM_CLOCK, Clock
from operator_core.db.actions import ActionDB
from operator_core.env import default_actor, env_flag
from operator_core.errors import OperatorError
from operator_core.model.views import AuditEventView
from rich.text import Text
from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

from operator_tui import data as dashboard_data
from operator_tui.data import DashboardData, Target
from operator_tui.key_hold import HeldKeysFlushed, Hold, KeyHold
from operator_tui.live import ChangeWatcher
from operator_tui.screens.confirm import ConfirmModal
from operator_tui.screens.dashboard import DashboardScreen
from operator_tui.screens.detail import DetailScreen
from operator_tui.screens.help import HelpScreen
from operator_tui.screens.reject import RejectReasonModal

if TYPE_CHECKING:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.subjects.base import Subject

MUTATIONS = frozenset({"approve", "reject", "cancel", "kill_switch", "resume"})

BackgroundTask = Callable[[], Awaitable[Any]]

TICK_INTERVAL = 5.0
"""Seconds between countdown (and age) updates, done from the clock without a read. Each line
that changes costs a redraw through Textual's compositor (about half a millisecond): a
retry backlog with a dozen rows in their last minute, ticking every second, kept an idle
dashboard at twice its CPU budget. In their last minute, times read in steps of the same
five seconds (``format.duration``); the exact time is in the column beside each countdown."""
STARTUP_SWITCH_INTERVAL = 0.0005
"""The interpreter's thread switch interval (seconds) until the first frame is up. Textual
writes frames from its own thread, which needs the interpreter lock; at the default 5 ms it
waited about 10 ms behind the events that follow the first frame (the driver's first resize
relays the screen out) before the first frame reached the terminal."""
MOVED_GRACE = 1.5
"""Seconds after another process's change moved the selection during which approve warns
instead of acting on the row the cursor moved to."""


class OperatorApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "Operator"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("a", "approve", "Approve"),
        Binding("r", "reject", "Reject"),
        Binding("c", "cancel", "Cancel"),
        Binding("K", "kill_switch", "Kill"),
        Binding("E", "resume", "Resume"),
        # Read-only mode hides the five above; these say why a key does nothing.
        Binding("a", "refuse('approve')", show=False),
        Binding("r", "refuse('reject')", show=False),
        Binding("c", "refuse('cancel')", show=False),
        Binding("K", "refuse('pull the kill switch')", show=False),
        Binding("E", "refuse('resume execution')", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        db_path: Path | str,
        subject: Subject | None = None,
        read_only: bool = False,
        *,
        clock: Clock | None = None,
        background: Sequence[BackgroundTask] = (),
        approval_mode: bool | None = None,
        actor: str | None = None,
        poll_interval: float = 0.5,
        tick_interval: float = TICK_INTERVAL,
        subject_loader: Callable[[], Subject] | None = None,
    ) -> None:
        """``subject_loader``, instead of ``subject``: a function that loads the subject,
        called right after the first frame (as ``operator tui`` does: a subject's module
        and definitions import pydantic); an error it raises ends the dashboard with one
        line. A subject loaded so is closed with the dashboard."""
        super().__init__()
        self.db_path = Path(db_path)
        self.subject = subject
        self._subject_loader = subject_loader
        self._subject_error: str | None = None
        self.read_only = read_only or env_flag("OPERATOR_READ_ONLY")
        self.clock = clock or SYSTEM_CLOCK
        self.actor = actor or default_actor()
        self.approval_mode = (
            env_flag("OPERATOR_APPROVAL_MODE") if approval_mode is None else approval_mode
        )
        self.db = ActionDB(self.db_path, clock=self.clock)
        self._executor: ActionExecutor | None = None
        self.watcher = ChangeWatcher(self.db, poll_interval)
        self.tick_interval = tick_interval
        self.dashboard = DashboardScreen()
        self.refreshes = 0
        self._rows_current = False
        """The rows shown are those of the last database change (a read has not failed since)."""
        self.loaded = asyncio.Event()
        self._background = list(background)
        self._initial: tuple[DashboardData, list[AuditEventView]] | None = None
        self._first_shown = asyncio.Event()
        self._moved: tuple[float, Target, Target] | None = None
        """(when, the row that left, the row the cursor moved to) after another process's
        change moved the selection."""
        self._tasks: list[asyncio.Task[Any]] = []
        self._switch_interval = sys.getswitchinterval()
        """The interpreter's switch interval before ``run`` lowered it for the start-up."""
        self.keys = KeyHold(self)
        """Holds the keys typed while a dialog, a screen or the filter is opening."""

    # ------------------------------------------------------------------ lifecycle

    def run(self, **kwargs: Any) -> None:
        """Run full screen. The garbage collector waits until the first frame is up: start-up
        builds about a hundred thousand objects that live as long as the process (modules,
        classes, pydantic schemas, styles), and collecting meanwhile scanned them again and
        again (about 90 ms of collections before the first paint). Until then threads also
        take turns more often (``STARTUP_SWITCH_INTERVAL``), so the first frame is written
        as soon as it is drawn."""
        gc.disable()
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(STARTUP_SWITCH_INTERVAL, self._switch_interval))
        try:
            return super().run(**kwargs)
        finally:
            sys.setswitchinterval(self._switch_interval)
            gc.enable()

    @property
    def executor(self) -> ActionExecutor:
        """The ActionExecutor every key goes through, over the dashboard's ActionDB; made
        (with the registry of the subject's actions) after the first frame, or when first
        needed."""
        if self._executor is None:
            from operator_core.actions.executor import ActionExecutor
            from operator_core.actions.registry import ActionRegistry

            if self._subject_loader is not None:
                try:
                    self.subject = self._subject_loader()
                except OperatorError as exc:  # ends the dashboard in ``_started``
                    self._subject_error = str(exc)
                except Exception as exc:  # the subject's module or class itself failed
                    self._subject_error = f"cannot load the subject: {type(exc).__name__}: {exc}"

            # The subject's definitions are read in ``_started``: the dashboard's keys do not
            # need them, the runner and agent of the demo start later.
            registry = (
                ActionRegistry.from_subject(self.subject, lazy=True)
                if self.subject
                else ActionRegistry()
            )
            self._executor = ActionExecutor(
                self.db_path,
                registry,
                approval_mode=self.approval_mode,
                clock=self.clock,
                db=self.db,
            )
        return self._executor

    def _started(self) -> None:
        """The first frame is on screen: the subject is loaded (if given as a loader), the
        executor made and the subject's definitions read; what start-up built is frozen out
        of the collector's sight (with the few thousand objects of start-up garbage among
        them, kept once rather than paying a full collection now), the collector resumes
        and threads take turns at the usual interval again."""
        executor = self.executor
        if self._subject_error is not None:
            self.exit(return_code=1, message=f"operator: {self._subject_error}")
            return
        try:
            executor.registry.load()
        except Exception as exc:  # a subject's own bug: said; the dashboard's keys still work
            self.notify(
                str(exc),
                title="Cannot read the subject's actions",
                severity="error",
                timeout=30,
                markup=False,
            )
        if not gc.isenabled():  # paused by run() (not under a test's run_test)
            gc.freeze()
            gc.enable()
            sys.setswitchinterval(self._switch_interval)

    def get_default_screen(self) -> DashboardScreen:
        return self.dashboard

    async def on_load(self) -> None:
        """Open the database and read what the first frame shows before the screen is laid
        out: the panes are composed with their rows and drawn once, rather than laid out and
        drawn empty, then again when the rows arrive. (Read while the screen is composed, on
        the database's thread, it took three times as long: that thread waits for the
        interpreter lock between rows while this one composes.)"""
        try:
            await self.db.open()
        except OperatorError as exc:
            self.exit(return_code=1, message=f"operator: {exc}")
            return
        # The version first: a commit between it and the reads makes the first follow re-read.
        await self.watcher.take_change()
        self._initial = await self._read(say=False)

    def on_mount(self) -> None:
        if not self._exit:
            self._follow()

    def first_show(self) -> None:
        """The dashboard screen is composed: fill it with what ``on_load`` read (if that read
        failed, the follow loop reads again and says why)."""
        initial, self._initial = self._initial, None
        if initial is not None:
            self._show(*initial)
        self._first_shown.set()
        self.call_after_refresh(self._started)

    async def on_unmount(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.watcher.stop()
        await self.db.close()
        if self._subject_loader is not None and self.subject is not None:  # ours to close
            with contextlib.suppress(Exception):
                await self.subject.aclose()

    def _start_background(self) -> None:
        for fn in self._background:
            task = asyncio.create_task(fn(), name=getattr(fn, "__name__", "background"))
            task.add_done_callback(self._background_done)
            self._tasks.append(task)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self.notify(
            f"{task.get_name()} stopped: {task.exception()}",
            title="Background task",
            severity="error",
            timeout=30,
            markup=False,
        )

    async def wait_loaded(self) -> None:
        """Until the first refresh has painted (tests and screenshots)."""
        await self.loaded.wait()

    # ------------------------------------------------------------------ following the database

    @work(exclusive=True, group="follow")
    async def _follow(self) -> None:
        await self._first_shown.wait()
        self.watcher.start()
        self._start_background()
        minute = None
        if self._rows_current and self.dashboard.data is not None:
            minute = self.dashboard.data.loaded_at.replace(second=0, microsecond=0)
        while True:
            top = self._top_screen()
            if top is None or not self.is_running:
                return  # shutting down: the screens are gone before this worker is
            if not isinstance(top, ModalScreen):
                now_minute = self.clock.now().replace(second=0, microsecond=0)
                changed = await self.watcher.take_change()
                if changed or now_minute != minute:
                    minute = now_minute
                    if changed or not self._rows_current:
                        await self._refresh_screen(external=self.watcher.external)
                    else:
                        await self._refresh_minute()
            await self.watcher.wait()

    async def _read(self, say: bool = True) -> tuple[DashboardData, list[AuditEventView]] | None:
        """Everything the screen shows, or None if the read failed (said in a toast, unless
        ``say`` is false: before the screen exists, the follow loop reads again and says it)."""
        db = self.db
        try:
            loaded = await dashboard_data.load(db, self._last_event_id)
        except OperatorError as exc:
            self._rows_current = False
            if say:
                self._unreadable(exc)
            return None
        self._rows_current = True
        return loaded, loaded.events

    @property
    def _last_event_id(self) -> int:
        return self.dashboard.last_event_id if self.dashboard.is_mounted else 0

    async def _refresh_screen(self, external: bool = False) -> None:
        """Re-read everything the screen shows. After another process's change, a selected
        row that left the list is remembered with the row the cursor moved to (see
        ``_moved_under``)."""
        before = self.dashboard.current_target() if external else None
        read = await self._read()
        # Shutting down (a dialog on top is closed first, then the dashboard's panes).
        if read is not None and self.is_running:
            self._show(*read)
            after = self.dashboard.current_target()
            if (
                before is not None
                and after is not None
                and after != before
                and not self.dashboard.active_pane.shows(before)
            ):
                self._moved = (time.monotonic(), before, after)

    async def _refresh_minute(self) -> None:
        """A new minute and nothing written since the last read: the rows are the same (their
        times are recomputed from the clock); only the per-minute activity is re-read."""
        assert self.dashboard.data is not None
        try:
            loaded = await dashboard_data.next_minute(self.db, self.dashboard.data)
        except OperatorError as exc:
            self._unreadable(exc)
            return
        if not self.is_running:
            return
        self.dashboard.show_minute(loaded)
        self._showed()

    def _show(self, loaded: DashboardData, events: list[AuditEventView]) -> None:
        self.dashboard.show(loaded, events)
        self._showed()

    def _top_screen(self) -> Screen[Any] | None:
        """The screen on top, or None once the app has begun to shut down."""
        try:
            return self.screen_stack[-1]
        except (IndexError, KeyError):
            return None

    def _showed(self) -> None:
        """After the dashboard took new data: an open detail view follows it."""
        top = self._top_screen()
        if isinstance(top, DetailScreen):
            top.reload()
        self.refreshes += 1
        self.loaded.set()

    def _unreadable(self, exc: OperatorError) -> None:
        self.notify(str(exc), title="Cannot read the database", severity="error", markup=False)

    # ------------------------------------------------------------------ screens

    async def on_event(self, event: events.Event) -> None:
        """Keys typed while something is opening wait for it (``operator_tui.key_hold``)."""
        if not self.keys.take(event):
            await super().on_event(event)

    def on_held_keys_flushed(self, message: HeldKeysFlushed) -> None:
        self.keys.flushed(message.hold)

    def push_screen(self, screen: Any, *args: Any, **kwargs: Any) -> Any:
        """Every screen pushed holds the keys typed until it is mounted and focused."""
        self.keys.screen_pushed(self.get_screen(screen))
        return super().push_screen(screen, *args, **kwargs)

    def open_details(self, target: Target) -> None:
        self.push_screen(DetailScreen(target))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.screen, self.read_only))

    # ------------------------------------------------------------------ mutations

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATIONS:
            return not self.read_only
        if action == "refuse":
            return self.read_only
        return True

    def action_refuse(self, what: str) -> None:
        self.notify(
            f"Read-only dashboard: cannot {what}. Start it without --read-only "
            "(and without OPERATOR_READ_ONLY=1) to act.",
            title="Read-only",
            severity="warning",
        )

    def _target(self) -> Target | None:
        current = getattr(self.screen, "current_target", None)
        target: Target | None = current() if current is not None else None
        if target is None:
            self.notify("Select an action or workflow first.", severity="warning")
        return target

    def _moved_under(self, target: Target, verb: str, key: str) -> bool:
        """The row the operator had selected just left the list because another process
        changed it, and the cursor moved onto ``target``: say so once instead of acting on a
        row they may not have read (approve asks nothing else first)."""
        moved, self._moved = self._moved, None
        if moved is None:
            return False
        at, gone, now_on = moved
        if now_on != target or time.monotonic() - at > MOVED_GRACE:
            return False
        self.notify(
            f"{gone.label} has just left the list (another process changed it); the "
            f"cursor is now on {target.label}. Press {key} again to {verb} it.",
            title="Selection moved",
            severity="warning",
            markup=False,
        )
        return True

    def action_approve(self) -> None:
        target = self._target()
        if target is None or self._moved_under(target, "approve", "a"):
            return
        if target.kind == "workflow":
            call = self.executor.approve_workflow(target.id, self.actor)
        else:
            call = self.executor.approve_proposal(target.id, self.actor)
        self._mutate(f"approve {target.label}", call, f"Approved {target.label}")

    def _opening_on(self) -> tuple[Hold, Target | None]:
        """A key that opens a dialog about the selected row: the keys after it are held
        from now (see ``key_hold``); with no row selected nothing opens, and they are
        dropped."""
        hold = self.keys.begin()
        target = self._target()
        if target is None:
            hold.close()
        return hold, target

    def action_reject(self) -> None:
        hold, target = self._opening_on()
        if target is not None:
            self._reject(hold, target)

    @work(group="mutations")
    async def _reject(self, hold: Hold, target: Target) -> None:
        with hold:
            reason = await self.push_screen_wait(RejectReasonModal(target.label))
        if reason is None:
            return
        if target.kind == "workflow":
            call = self.executor.reject_workflow(target.id, self.actor, reason)
        else:
            call = self.executor.reject_proposal(target.id, self.actor, reason)
        await self._apply(f"reject {target.label}", call, f"Rejected {target.label}: {reason}")

    def action_cancel(self) -> None:
        hold, target = self._opening_on()
        if target is not None:
            self._cancel(hold, target)

    @work(group="mutations")
    async def _cancel(self, hold: Hold, target: Target) -> None:
        what = (
            "the whole workflow and every step not yet run"
            if target.kind == "workflow"
            else "it; it will not run"
        )
        with hold:
            confirmed = await self.push_screen_wait(
                ConfirmModal(f"Cancel {target.label}?", f"This cancels {what}.", "Cancel it")
            )
        if not confirmed:
            return
        if target.kind == "workflow":
            call = self.executor.cancel_workflow(target.id, self.actor)
        else:
            call = self.executor.cancel_proposal(target.id, self.actor)
        await self._apply(f"cancel {target.label}", call, f"Cancelled {target.label}")

    def action_kill_switch(self) -> None:
        self._kill_switch(self.keys.begin())

    @work(group="mutations")
    async def _kill_switch(self, hold: Hold) -> None:
        with hold:
            try:
                preview = await self.db.preview_kill_switch()
            except OperatorError as exc:
                self._refused("pull the kill switch", exc)
                return
            confirmed = await self.push_screen_wait(
                ConfirmModal("KILL SWITCH", kill_switch_summary(preview), "Stop everything")
            )
        if not confirmed:
            return
        result = await self._apply("pull the kill switch", self.executor.kill_switch(self.actor))
        if result is not None:
            self.notify(
                result.summary(), title="Kill switch engaged", severity="warning", timeout=10
            )

    def action_resume(self) -> None:
        self._resume(self.keys.begin())

    @work(group="mutations")
    async def _resume(self, hold: Hold) -> None:
        with hold:
            confirmed = await self.push_screen_wait(
                ConfirmModal(
                    "Resume execution?",
                    "Safety mode goes back to EXECUTE: runners start claiming approved work again."
                    "\nNothing the kill switch cancelled comes back.",
                    "Resume",
                    danger=False,
                )
            )
        if not confirmed:
            return
        changed = await self._apply("resume execution", self.executor.resume(self.actor))
        if changed is not None:
            self.notify(
                "Execution resumed." if changed else "Execution was already on.", title="EXECUTE"
            )

    def _mutate(self, what: str, call: Awaitable[Any], success: str) -> None:
        self.run_worker(self._apply(what, call, success), group="mutations")

    async def _apply(self, what: str, call: Awaitable[Any], success: str | None = None) -> Any:
        """Run one executor call; the engine's refusal becomes an error toast. Returns the
        call's result, or None when refused."""
        try:
            result = await call
        except OperatorError as exc:
            self._refused(what, exc)
            return None
        finally:
            self.watcher.mark_dirty()
        if success:
            self.notify(success, markup=False)
        return result

    def _refused(self, what: str, exc: OperatorError) -> None:
        self.notify(str(exc), title=f"Could not {what}", severity="error", timeout=10, markup=False)


def kill_switch_summary(preview: dict[str, int]) -> Text:
    """What the kill switch will do, from ActionDB.preview_kill_switch()."""
    text = Text()
    text.append("Safety mode goes to OBSERVE: nothing new executes, in any process.\n\n")
    text.append("Cancels:\n", style="bold")
    text.append(
        f"  • {preview.get('pending', 0)} pending action(s) "
        "(awaiting approval, approved or scheduled)\n"
    )
    text.append(f"  • {preview.get('retry_waiting', 0)} action(s) waiting for a retry\n")
    text.append(f"  • {preview.get('workflows', 0)} open workflow(s)\n")
    text.append("Stops: ", style="bold")
    text.append(
        f"{preview.get('executing', 0)} executing action(s), cancelled by their "
        "runner within a second.\n\n"
    )
    text.append("Resume later with E; nothing cancelled comes back.", style="italic")
    return text
