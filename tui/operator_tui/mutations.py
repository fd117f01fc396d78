"""The dashboard's five mutations: approve, reject, cancel, the kill switch and resume.

Each goes through the ActionExecutor (the same code path as the CLI), as the app's actor;
the engine's refusal becomes an error toast. Mixed into ``OperatorApp``, where Textual looks
up the key bindings' actions.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from operator_core.errors import InvalidTransitionError, OperatorError
from operator_core.model.states import ActionStatus
from rich.text import Text
from textual import work

from operator_tui.approving import approve_question, asks_first, bulk_lines, why_not
from operator_tui.data import Target
from operator_tui.key_hold import Hold

if TYPE_CHECKING:
    from operator_core.actions.decisions import Decision
    from operator_core.actions.executor import ActionExecutor
    from operator_core.db.actions import ActionDB
    from operator_core.subjects.base import Subject
    from rich.console import RenderableType
    from textual.app import App

    from operator_tui.key_hold import KeyHold
    from operator_tui.live import ChangeWatcher
    from operator_tui.screens.dashboard import DashboardScreen

    _Base = App[None]
else:
    _Base = object

MUTATIONS = frozenset({"approve", "reject", "cancel", "kill_switch", "resume"})
REFUSED = {
    "approve": "approve",
    "reject": "reject",
    "cancel": "cancel",
    "pull the kill switch": "kill_switch",
    "resume execution": "resume",
}
"""The ``refuse`` binding's word → the mutation it stands in for."""

MOVED_GRACE = 1.5
"""Seconds after another process's change moved the selection during which approve warns
instead of acting on the row the cursor moved to."""


class Mutations(_Base):
    """The key bindings' actions that change state, and the read-only refusals."""

    read_only: bool
    actor: str
    db: ActionDB
    subject: Subject | None
    dashboard: DashboardScreen
    keys: KeyHold
    watcher: ChangeWatcher
    _moved: tuple[float, Target, Target] | None

    @property
    def executor(self) -> ActionExecutor:
        raise NotImplementedError

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A key that cannot apply now is not offered (the footer leaves it out); pressed
        anyway, its ``refuse`` binding says why in one line."""
        if action in MUTATIONS:
            return self._why_not(action) is None
        if action == "refuse":
            return self._why_not(REFUSED.get(str(parameters[0]), "")) is not None
        return True

    def _why_not(self, action: str, what: str = "") -> str | None:
        """Why ``action`` (in words: ``what``) cannot apply now (read-only, OBSERVE, the
        selected row's state), or None."""
        if self.read_only:
            return (
                f"Read-only dashboard: cannot {what or action}. Start it without --read-only "
                "(and without OPERATOR_READ_ONLY=1) to act."
            )
        if action not in ("approve", "reject", "cancel"):
            return None
        data = getattr(self.dashboard, "data", None)
        if action != "cancel" and data is not None and data.safety.observe:
            return (
                "Safety mode is OBSERVE (kill switch): nothing is approved or rejected until "
                "execution resumes (E)."
            )
        if self._marked():
            return None  # each marked row is decided by the engine, one by one
        current = getattr(self.screen, "current_target", None)
        target: Target | None = current() if current is not None else None
        return None if target is None else why_not(action, target)

    def action_refuse(self, what: str) -> None:
        # It opens nothing: keys typed with it (a paste) are dropped, never acted on.
        self.keys.begin().close()
        why = self._why_not(REFUSED.get(what, what), what) or f"Cannot {what} now."
        self.notify(
            why,
            title="Read-only" if self.read_only else "Not now",
            severity="warning",
            markup=False,
        )

    def _risk(self, name: str) -> str | None:
        """The action's risk from the subject's definitions; None if not known."""
        try:
            definition = self.executor.registry.get_definition(name)
        except Exception:  # a subject that cannot be read: the risk is not known
            return None
        return definition.risk_level.value if definition is not None else None

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

    def _marked(self) -> list[Target]:
        """The rows marked with space in the focused pane (none on other screens)."""
        marked = getattr(self.screen, "marked_targets", None)
        return list(marked()) if marked is not None else []

    def action_approve(self) -> None:
        if marked := self._marked():
            self._bulk(self.keys.begin(), "approve", marked)
            return
        target = self._target()
        if target is None or self._moved_under(target, "approve", "a"):
            return
        if asks_first(target, self._risk):
            # Held from this key: the confirm is never answered by keys typed before it.
            self._approve_asked(self.keys.begin(), target)
            return
        call = self.executor.decide("approve", target.kind, target.id, self.actor)
        self._mutate(f"approve {target.label}", call, f"Approved {target.label}")

    @work(group="mutations")
    async def _approve_asked(self, hold: Hold, target: Target) -> None:
        """A high-risk action, or a workflow (for a step: its workflow), after a confirm
        that names it and shows what it runs."""
        with hold:
            try:
                question = await approve_question(self.db, self.subject, self._risk, target)
            except OperatorError as exc:
                self._refused(f"approve {target.label}", exc)
                return
            confirmed = await self._confirm(question.title, question.body, question.confirm)
        if not confirmed:
            return
        decided = question.decided
        call = self.executor.decide("approve", decided.kind, decided.id, self.actor)
        await self._apply(f"approve {decided.label}", call, f"Approved {decided.label}")

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
        if marked := self._marked():
            self._bulk(self.keys.begin(), "reject", marked)
            return
        hold, target = self._opening_on()
        if target is not None:
            self._reject(hold, target)

    @work(group="mutations")
    async def _reject(self, hold: Hold, target: Target) -> None:
        with hold:
            reason = await self._reason(target.label)
        if reason is None:
            return
        call = self.executor.decide("reject", target.kind, target.id, self.actor, reason)
        await self._apply(f"reject {target.label}", call, f"Rejected {target.label}: {reason}")

    def action_cancel(self) -> None:
        if marked := self._marked():
            self._bulk(self.keys.begin(), "cancel", marked)
            return
        hold, target = self._opening_on()
        if target is not None:
            self._cancel(hold, target)

    @work(group="mutations")
    async def _cancel(self, hold: Hold, target: Target) -> None:
        with hold:
            try:
                body, done = await self._cancel_words(target)
            except OperatorError as exc:
                self._refused(f"cancel {target.label}", exc)
                return
            confirmed = await self._confirm(f"Cancel {target.label}?", body, "Cancel it")
        if not confirmed:
            return
        call = self.executor.decide("cancel", target.kind, target.id, self.actor)
        await self._apply(f"cancel {target.label}", call, done)

    async def _cancel_words(self, target: Target) -> tuple[str, str]:
        """What the confirm says a cancel will do, and the toast once done: a running action
        is stopped by its runner (as the kill switch stops it), the rest will never run."""
        if target.kind == "workflow":
            return (
                "This cancels the whole workflow and every step not yet run; a step running "
                "now is stopped by its runner.",
                f"Cancelled {target.label}",
            )
        p = await self.db.get_proposal(target.id)
        done = (ActionStatus.COMPLETED, ActionStatus.CANCELLED)
        if p is not None and (
            p.status in done or (p.status == ActionStatus.FAILED and p.next_retry_at is None)
        ):
            # Said now, not after a dialog that promises what the engine will refuse.
            raise InvalidTransitionError(f"{target.label} has finished: nothing to cancel")
        if p is not None and p.status == ActionStatus.EXECUTING:
            runner = p.claimed_by or "its runner"
            return (
                f"It is executing now on {runner}. This asks the runner to stop it (its "
                "command's whole process group, as the kill switch does); it ends cancelled, "
                "with the attempt recorded.",
                f"Asked {runner} to stop {target.label}",
            )
        return "This cancels it; it will not run.", f"Cancelled {target.label}"

    @work(group="mutations")
    async def _bulk(self, hold: Hold, decision: Decision, targets: list[Target]) -> None:
        """``a``/``r``/``c`` with rows marked: one dialog that lists them all (for a reject,
        the reason's), then the decision on each, through the executor; one toast says
        what was done, another what the engine refused."""
        listing = "\n".join(f"  • {t.label}" for t in targets)
        names = ", ".join(t.name for t in targets)
        reason = None
        with hold:
            if decision == "reject":
                reason = await self._reason(f"{len(targets)} marked: {names}")
                if reason is None:
                    return
            else:
                body = (
                    bulk_lines(targets, self._risk)
                    if decision == "approve"
                    else f"This will {decision} each of:\n{listing}"
                )
                confirmed = await self._confirm(
                    f"{decision.capitalize()} {len(targets)} marked?",
                    body,
                    f"{decision.capitalize()} all {len(targets)}",
                    danger=decision == "cancel",
                )
                if not confirmed:
                    return
        done, refused = [], []
        for t in targets:
            try:
                await self.executor.decide(decision, t.kind, t.id, self.actor, reason)
            except OperatorError as exc:
                refused.append(f"{t.name}: {exc}")
            else:
                done.append(t.name)
        self.watcher.mark_dirty()
        clear = getattr(self.screen, "clear_marks", None)
        if clear is not None:
            clear()
        past = {"approve": "Approved", "reject": "Rejected", "cancel": "Cancelled"}[decision]
        if done:
            self.notify(f"{past} {len(done)}: {', '.join(done)}", markup=False)
        if refused:
            self.notify(
                "\n".join(refused),
                title=f"Could not {decision} {len(refused)}",
                severity="error",
                timeout=10,
                markup=False,
            )

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
            confirmed = await self._confirm(
                "KILL SWITCH", kill_switch_summary(preview), "Stop everything"
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
            confirmed = await self._confirm(
                "Resume execution?",
                "Safety mode goes back to EXECUTE: runners start claiming approved work again."
                "\nNothing the kill switch cancelled comes back.",
                "Resume",
                danger=False,
            )
        if not confirmed:
            return
        changed = await self._apply("resume execution", self.executor.resume(self.actor))
        if changed is not None:
            self.notify(
                "Execution resumed." if changed else "Execution was already on.", title="EXECUTE"
            )

    async def _confirm(
        self, title: str, body: RenderableType, confirm_label: str, *, danger: bool = True
    ) -> bool | None:
        """The answer to a confirm dialog (imported when first asked: no first frame shows
        one)."""
        from operator_tui.screens.confirm import ConfirmModal

        return await self.push_screen_wait(ConfirmModal(title, body, confirm_label, danger=danger))

    async def _reason(self, what: str) -> str | None:
        """The reason typed for a reject, or None if the dialog was dismissed."""
        from operator_tui.screens.reject import RejectReasonModal

        return await self.push_screen_wait(RejectReasonModal(what))

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
