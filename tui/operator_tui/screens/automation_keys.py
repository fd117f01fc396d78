"""The keys that act in the Automations view and its detail screens: ``x`` cancels an
execution and ``e`` enables or disables an automation, each after a confirm, through the
executor (the same code path as the CLI) as the app's actor; read-only mode refuses them as
it refuses the dashboard's. Definitions are never edited here (``operator automations``).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, cast

from textual import work
from textual.binding import Binding

from operator_tui.screens.confirm import ConfirmModal
from operator_tui.screens.polled import PolledScreen

if TYPE_CHECKING:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.db.automations import Automation
    from operator_core.db.executions import Execution

    from operator_tui.key_hold import Hold, KeyHold

MUTATIONS = frozenset({"cancel_execution", "toggle_enabled"})

CANCEL = [
    Binding("x", "cancel_execution", "Cancel execution"),
    # Read-only mode hides the binding above; this one says why the key does nothing.
    Binding("x", "refuse('cancel an execution')", show=False),
]
TOGGLE = [
    Binding("e", "toggle_enabled", "Enable/disable"),
    Binding("e", "refuse('enable or disable an automation')", show=False),
]
ELSEWHERE = [Binding(key, f"elsewhere('{key}')", show=False) for key in ("a", "r", "c")]
"""The dashboard's approve, reject and cancel act on its panes' rows: here they say so
(rather than "select an action first"), and stay out of the footer."""


class _Acting(Protocol):
    """What these screens use of the app (``OperatorApp`` with ``operator_tui.mutations``)."""

    read_only: bool
    actor: str
    keys: KeyHold

    @property
    def executor(self) -> ActionExecutor: ...

    def action_refuse(self, what: str) -> None: ...

    async def _apply(self, what: str, call: Awaitable[Any], success: str | None = None) -> Any: ...


class ActingScreen(PolledScreen):
    """A screen with ``x`` and/or ``e`` (from ``CANCEL`` and ``TOGGLE`` in its bindings),
    acting on what ``selected_execution`` and ``selected_automation`` return."""

    def selected_execution(self) -> Execution | None:
        return None

    def selected_automation(self) -> Automation | None:
        return None

    @property
    def _ops(self) -> _Acting:
        return cast("_Acting", self.app)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        read_only = self._ops.read_only
        if action in MUTATIONS:
            return not read_only
        if action == "refuse":
            return read_only
        return True

    def action_refuse(self, what: str) -> None:
        self._ops.action_refuse(what)

    def action_elsewhere(self, key: str) -> None:
        self.notify(
            f"{key} acts on the dashboard's actions and workflows: esc goes back to them."
            + (" Here x cancels an execution." if key == "c" else ""),
            severity="warning",
        )

    def action_cancel_execution(self) -> None:
        hold = self._ops.keys.begin()
        execution = self.selected_execution()
        if execution is None:
            hold.close()
            self.notify("Select an execution first.", severity="warning")
            return
        if not execution.is_open:
            hold.close()
            self.notify(
                f"Execution #{execution.id} is {execution.status.lower()}: only a pending or "
                "running execution can be cancelled.",
                severity="warning",
            )
            return
        self._cancel(hold, execution)

    @work(group="automation-mutations")
    async def _cancel(self, hold: Hold, e: Execution) -> None:
        label = f"execution #{e.id}"
        with hold:
            confirmed = await self.app.push_screen_wait(
                ConfirmModal(
                    f"Cancel {label}?",
                    f"{e.automation_name} v{e.version} on ticket #{e.ticket_id} ends CANCELLED; "
                    "its pending proposals are cancelled and a running one is asked to stop.",
                    "Cancel it",
                )
            )
        if not confirmed:
            return
        ops = self._ops
        call = ops.executor.cancel_execution(e.id, ops.actor)
        await ops._apply(f"cancel {label}", call, f"Cancelled {label}")
        self.changed()

    def action_toggle_enabled(self) -> None:
        hold = self._ops.keys.begin()
        automation = self.selected_automation()
        if automation is None:
            hold.close()
            self.notify("Select an automation first.", severity="warning")
            return
        self._toggle(hold, automation)

    @work(group="automation-mutations")
    async def _toggle(self, hold: Hold, a: Automation) -> None:
        enable = not a.enabled
        verb = "Enable" if enable else "Disable"
        body = (
            "Matching ticket events start it again from now on."
            if enable
            else "No new ticket event starts it; executions in flight go on (x cancels one)."
        )
        with hold:
            confirmed = await self.app.push_screen_wait(
                ConfirmModal(f"{verb} automation {a.name}?", body, verb, danger=not enable)
            )
        if not confirmed:
            return
        ops = self._ops
        call = ops.executor.set_automation_enabled(a.name, enable, ops.actor)
        changed = await ops._apply(f"{verb.lower()} automation {a.name}", call)
        if changed is not None:
            done = f"{verb}d automation {a.name}"
            self.notify(done if changed else f"{a.name} was already {verb.lower()}d", markup=False)
        self.changed()
