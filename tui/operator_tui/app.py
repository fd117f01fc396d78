"""OperatorApp: the dashboard. Reads through ActionDB, changes state only through
ActionExecutor (the same code path as the CLI), as ``user@host``.

The first frame is drawn from views of the rows (``operator_core.model.views``) before
pydantic is imported: the executor, the registry and the subject (whose definitions are
pydantic models) come right after it (``_started``, see ``operator_tui.startup``). The
database is followed by one worker (``operator_tui.follow``) that posts what it read; the
keys that change state are in ``operator_tui.mutations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from operator_core.clock import SYSTEM_CLOCK, Clock
from operator_core.db.actions import ActionDB
from operator_core.db.url import NOWHERE, DbTarget, parse_target
from operator_core.env import default_actor, env_flag
from operator_core.errors import OperatorError
from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from operator_tui.data import DashboardData, Target, anchor_of
from operator_tui.follow import DashboardRead, Follower, MinuteRead, ReadFailed
from operator_tui.key_hold import HeldKeysFlushed, KeyHold
from operator_tui.live import ChangeWatcher
from operator_tui.messages import OpenDetails
from operator_tui.mutations import Mutations
from operator_tui.screens.dashboard import DashboardScreen
from operator_tui.startup import StartupTuning, load_subject, make_executor, open_db

if TYPE_CHECKING:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.model.views import AuditEventView
    from operator_core.subjects.base import Subject

BackgroundTask = Callable[[], Awaitable[Any]]

TICK_INTERVAL = 5.0
"""Seconds between countdown (and age) updates, done from the clock without a read. Each line
that changes costs a redraw through Textual's compositor: a retry backlog with rows in their
last minute, ticking every second, kept an idle dashboard over its CPU budget. In their last
minute, times read in steps of the same five seconds (``format.duration``); the exact time is
in the column beside each countdown."""


class OperatorApp(Mutations, App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "Operator"
    COMMAND_PALETTE_BINDING = "ctrl+p"
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
        Binding("A", "automations", "Automations", show=False),
        Binding("y", "copy_id", "Copy id", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        db_path: Path | str | DbTarget,
        subject: Subject | None = None,
        read_only: bool = False,
        *,
        clock: Clock | None = None,
        background: Sequence[BackgroundTask] = (),
        approval_mode: bool | None = None,
        actor: str | None = None,
        poll_interval: float | None = None,
        tick_interval: float = TICK_INTERVAL,
        subject_loader: Callable[[], Subject] | None = None,
    ) -> None:
        """``db_path``: a SQLite file, or a PostgreSQL URL (a ``DbTarget`` or its text).
        ``subject_loader``, instead of ``subject``: a function that loads the subject,
        called right after the first frame (as ``operator tui`` does: a subject's module
        and definitions import pydantic); an error it raises ends the dashboard with one
        line. A subject loaded so is closed with the dashboard."""
        super().__init__()
        self.target = db_path if isinstance(db_path, DbTarget) else parse_target(db_path)
        self.db_path = self.target.path or NOWHERE
        self.subject = subject
        self._subject_loader = subject_loader
        self._subject_error: str | None = None
        self.read_only = read_only or env_flag("OPERATOR_READ_ONLY")
        self.clock = clock or SYSTEM_CLOCK
        self.actor = actor or default_actor()
        self.approval_mode = (
            env_flag("OPERATOR_APPROVAL_MODE") if approval_mode is None else approval_mode
        )
        self.db: ActionDB = open_db(self.target, self.clock)
        self._executor: ActionExecutor | None = None
        self.watcher = ChangeWatcher(self.db, poll_interval)
        self.keys = KeyHold(self)
        """Holds the keys typed while a dialog, a screen or the filter is opening."""
        self.dashboard = DashboardScreen(
            where=self.target.path or self.target.display,
            approval_mode=self.approval_mode,
            read_only=self.read_only,
            clock=self.clock,
            tick_interval=tick_interval,
            keys=self.keys,
            first_show=self.first_show,
        )
        self.follower = Follower(self, self.db, self.watcher, self.clock, self._selected)
        self.refreshes = 0
        self.loaded = asyncio.Event()
        self.started = asyncio.Event()
        """The subject's definitions are read (or could not be): risks are shown."""
        self._background = list(background)
        self._initial: DashboardData | None = None
        self._start_done = asyncio.Event()
        """Set when the start's last step (``_start_anchor``) has run."""
        self._first_drawn = asyncio.Event()
        """Set in ``_started``: the database is followed (and the rows the first read left
        out are read) from then on, not while the first frame is laid out and drawn."""
        self._moved: tuple[float, Target, Target] | None = None
        """(when, the row that left, the row the cursor moved to) after another process's
        change moved the selection."""
        self._tasks: list[asyncio.Task[Any]] = []
        self._tuning = StartupTuning()

    # ------------------------------------------------------------------ lifecycle

    def run(self, **kwargs: Any) -> None:
        """Run full screen, tuned for the first frame (``operator_tui.startup``)."""
        with self._tuning.running():
            return super().run(**kwargs)

    @property
    def executor(self) -> ActionExecutor:
        """The ActionExecutor every key goes through, over the dashboard's ActionDB; made
        (with the registry of the subject's actions) after the first frame, or when first
        needed."""
        if self._executor is None:
            if self._subject_loader is not None:
                # An error ends the dashboard in ``_started``.
                self.subject, self._subject_error = load_subject(self._subject_loader)
            self._executor = make_executor(
                self.db_path, self.db, self.subject, self.approval_mode, self.clock
            )
        return self._executor

    def _started(self) -> None:
        """The first frame is on screen: the subject is loaded (if given as a loader), the
        executor made and the subject's definitions read; the start-up tuning ends."""
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
        else:
            self.dashboard.set_risks(
                {d.name: d.risk_level.value for d in executor.registry.list_definitions()}
            )
        self.started.set()
        self._first_drawn.set()
        self._tuning.first_frame_drawn()
        # Last of the start: the signing code (cryptography) stays off the first frame's path
        # and out of the subject's way.
        self.call_after_refresh(self._start_anchor)

    def get_default_screen(self) -> DashboardScreen:
        return self.dashboard

    async def on_load(self) -> None:
        """Open the database and read what the first frame shows before the screen is laid
        out: the panes are composed with their rows and drawn once, rather than laid out and
        drawn empty, then again when the rows arrive. (Read while the screen is composed, on
        the database's thread, it took longer: that thread waits for the interpreter lock
        between rows while this one composes.)"""
        try:
            await self.db.open()
        except OperatorError as exc:
            self.exit(return_code=1, message=f"operator: {exc}")
            return
        # The version first: a commit between it and the reads makes the first follow re-read.
        await self.watcher.take_change()
        read = await self.follower.read(rows=max(self.dashboard.first_rows(), 1))
        # If the read failed, the follow loop reads again and says why.
        self._initial = None if isinstance(read, OperatorError) else read

    def on_mount(self) -> None:
        if not self._exit:
            self._follow()

    def _start_anchor(self) -> None:
        """After the first frame and ``_started`` (it loads the signing code): publish
        checkpoints, and show the last one in the header at once."""
        try:
            if not self._exit:
                self.db.start_audit_publisher()
                self.dashboard.show_anchor(anchor_of(self.db))
        finally:
            self._start_done.set()

    def first_show(self) -> None:
        """The dashboard screen is composed: fill it with what ``on_load`` read, before its
        first frame."""
        initial, self._initial = self._initial, None
        if initial is not None:
            self._show(initial, initial.events)
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
        """Until the dashboard shows every row it reads and its start is done, the header's
        audit checkpoint included (tests and screenshots). A small first read shows every
        row before the start's last steps run."""
        await self.loaded.wait()
        await self._start_done.wait()

    # ------------------------------------------------------------------ following the database

    @work(exclusive=True, group="follow")
    async def _follow(self) -> None:
        await self._first_drawn.wait()
        self.watcher.start()
        self._start_background()
        await self.follower.follow()

    @on(DashboardRead)
    def _read_shown(self, message: DashboardRead) -> None:
        """After another process's change, a selected row that left the list is remembered
        with the row the cursor moved to (see ``Mutations._moved_under``)."""
        if not self.is_running:  # shutting down: a dialog on top closes, then the panes
            return
        self._show(message.data, message.data.events)
        before, after = message.before, self.dashboard.current_target()
        if (
            before is not None
            and after is not None
            and after != before
            and not self.dashboard.active_pane.shows(before)
        ):
            self._moved = (time.monotonic(), before, after)

    @on(MinuteRead)
    def _minute_shown(self, message: MinuteRead) -> None:
        if not self.is_running:
            return
        self.dashboard.show_minute(message.data)
        self._showed()

    @on(ReadFailed)
    def _read_failed(self, message: ReadFailed) -> None:
        self.notify(
            str(message.error), title="Cannot read the database", severity="error", markup=False
        )

    def _show(self, loaded: DashboardData, events: list[AuditEventView]) -> None:
        self.dashboard.show(loaded, events)
        self._showed(all_rows=not loaded.partial)

    def _selected(self) -> Target | None:
        return self.dashboard.current_target()

    def _showed(self, all_rows: bool = True) -> None:
        """After the dashboard took new data: an open detail view follows it. ``loaded`` is
        set once every row is read (the first frame's read leaves some for after it)."""
        try:
            top = self.screen_stack[-1]
        except (IndexError, KeyError):  # shutting down
            top = None
        if getattr(top, "FOLLOWS_DASHBOARD", False):
            top.reload()
        self.refreshes += 1
        if all_rows:
            self.loaded.set()

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

    # The views below are imported when first opened: the first frame does not show them.

    @on(OpenDetails)
    def _open_details(self, message: OpenDetails) -> None:
        from operator_tui.screens.detail import DetailScreen

        self.push_screen(DetailScreen(message.target, self.db, lambda: self.subject))

    def action_automations(self) -> None:
        """The Automations view (escape comes back); imported when first opened; not
        twice."""
        from operator_tui.screens.automations import AutomationsScreen

        if not any(isinstance(s, AutomationsScreen) for s in self.screen_stack):
            self.push_screen(AutomationsScreen(self.db))

    def action_help(self) -> None:
        from operator_tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.screen, self.read_only))

    def action_copy_id(self) -> None:
        """The selected row's id to the clipboard (OSC 52: through SSH and tmux too)."""
        current = getattr(self.screen, "current_target", None)
        target: Target | None = current() if current is not None else None
        if target is None:
            self.notify("Nothing selected to copy.", severity="warning")
            return
        # The number alone: what the CLI takes (``operator actions show 5``).
        self.copy_to_clipboard(str(target.id))
        self.notify(f"Copied {target.id}, the id of {target.label}", markup=False)

    def action_goto(self, where: str) -> None:
        """A pane of the dashboard (by id) or a view (``history``, ``audit``,
        ``automations``, see ``operator_tui.goto.PLACES``): back to the dashboard first."""
        from operator_tui.screens.audit import AuditScreen
        from operator_tui.screens.history import HistoryScreen

        views = {"history": HistoryScreen, "audit": AuditScreen}
        if where in views:
            if not isinstance(self.screen, views[where]):
                self._back_to_dashboard()
                self.push_screen(views[where](self.db, self.keys.begin))
            return
        self._back_to_dashboard()
        if where == "automations":
            self.action_automations()
        else:
            self.dashboard.action_pane(where)

    def action_goto_prompt(self) -> None:
        """``:``: a pane or view by name (``operator_tui.screens.goto_prompt``)."""
        from operator_tui.screens.goto_prompt import GotoPrompt

        self.push_screen(GotoPrompt(), self._goto_chosen)

    def _goto_chosen(self, where: str | None) -> None:
        if where is not None:
            self.action_goto(where)

    def _back_to_dashboard(self) -> None:
        while len(self.screen_stack) > 1 and self.screen is not self.dashboard:
            self.pop_screen()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette (ctrl+p): every key the screen below offers right now, made
        from the same live bindings as its footer and ``?`` (so the three never differ)."""
        from operator_tui.screens.help import binding_rows

        for row in binding_rows(screen)[0]:
            yield SystemCommand(
                row.description,
                f"key {row.keys}",
                lambda a=row.action, n=row.node: self._run_binding(a, n),
            )

    def _run_binding(self, action: str, node: Any) -> None:
        self.call_later(self.run_action, action, node)
