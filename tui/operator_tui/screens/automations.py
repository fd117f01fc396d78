"""``A``: the Automations view. The automations (version, enabled, scope, trigger, last
execution) and the executions in flight and recent (ticket, automation and version, status,
current node, node progress), following the database while shown.

Enter opens an execution's frozen definition as a tree, or an automation's version history.
``x`` cancels the selected execution and ``e`` enables or disables the selected automation,
each after a confirm, through the executor as every other key; definitions are never edited
here (``operator automations apply``).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, cast

from operator_core.db.automation_views import AutomationsView, automations_view
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from operator_tui.format import clip, full_time
from operator_tui.screens.automation_detail import (
    ELSEWHERE,
    ExecutionScreen,
    HistoryScreen,
    elsewhere,
    execution_status,
)
from operator_tui.screens.confirm import ConfirmModal
from operator_tui.screens.polled import PolledScreen
from operator_tui.widgets.fixed_table import FixedTable

if TYPE_CHECKING:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.db.actions import ActionDB
    from operator_core.db.automations import Automation
    from operator_core.db.executions import Execution

    from operator_tui.key_hold import Hold, KeyHold


class _Acting(Protocol):
    """What this view uses of the app (``OperatorApp`` with ``operator_tui.mutations``)."""

    read_only: bool
    actor: str
    keys: KeyHold

    @property
    def executor(self) -> ActionExecutor: ...

    def action_refuse(self, what: str) -> None: ...

    async def _apply(self, what: str, call: Awaitable[Any], success: str | None = None) -> Any: ...


AUTOMATION_COLUMNS = (
    ("name", "Automation", 26),
    ("version", "Ver", 4),
    ("enabled", "Enabled", 7),
    ("trigger", "Trigger", 18),
    ("scope", "Scope", 16),
    ("last", "Last execution", 36),
)
EXECUTION_COLUMNS = (
    ("id", "ID", 5),
    ("ticket", "Ticket", 6),
    ("automation", "Automation", 30),
    ("status", "Status", 12),
    ("node", "Node", 14),
    ("progress", "Nodes", 5),
    ("started", "Started (UTC)", 20),
)
MUTATIONS = frozenset({"cancel_execution", "toggle_enabled"})


def progress(e: Execution) -> str:
    """Settled nodes of all the frozen definition's nodes: ``2/5``."""
    return f"{len(e.state.completed_nodes)}/{len(e.definition.get('nodes', []))}"


def last_execution(e: Execution | None) -> Text:
    if e is None:
        return Text("never", style="dim")
    text = Text(f"#{e.id} ")
    text.append_text(execution_status(e.status))
    text.append(f" {full_time(e.created_at)}")
    return text


class AutomationsScreen(PolledScreen):
    DEFAULT_CSS = """
    AutomationsScreen .automations-section {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-style: bold;
    }
    AutomationsScreen #automations-table {
        height: auto;
        max-height: 40%;
    }
    AutomationsScreen #executions-table {
        height: 1fr;
    }
    """
    BINDINGS = [
        *ELSEWHERE,
        Binding("escape", "close", "Back", key_display="esc"),
        Binding("x", "cancel_execution", "Cancel execution"),
        Binding("e", "toggle_enabled", "Enable/disable"),
        # Read-only mode hides the two above; these say why the key does nothing.
        Binding("x", "refuse('cancel an execution')", show=False),
        Binding("e", "refuse('enable or disable an automation')", show=False),
    ]

    def __init__(self, db: ActionDB) -> None:
        super().__init__(db)
        self.view: AutomationsView | None = None

    @property
    def _ops(self) -> _Acting:
        """The app's keys, actor, executor and refusal toasts (``operator_tui.mutations``)."""
        return cast("_Acting", self.app)

    def compose(self) -> ComposeResult:
        yield Static("Automations", id="automations-title", classes="automations-section")
        table = FixedTable(id="automations-table", cursor_type="row", zebra_stripes=True)
        for key, label, width in AUTOMATION_COLUMNS:
            table.add_column(label, width=width, key=key)
        yield table
        yield Static("Executions", id="executions-title", classes="automations-section")
        runs = FixedTable(id="executions-table", cursor_type="row", zebra_stripes=True)
        for key, label, width in EXECUTION_COLUMNS:
            runs.add_column(label, width=width, key=key)
        yield runs
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#executions-table", FixedTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        read_only = self._ops.read_only
        if action in MUTATIONS:
            return not read_only
        if action == "refuse":
            return read_only
        return True

    def action_refuse(self, what: str) -> None:
        self._ops.action_refuse(what)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_elsewhere(self, key: str) -> None:
        elsewhere(self, key)

    # ------------------------------------------------------------------ reading

    async def reload(self) -> None:
        self.view = view = await self._db.read(automations_view)
        in_flight = sum(1 for e in view.executions if e.is_open)
        enabled = sum(1 for a in view.automations if a.enabled)
        title = f"Automations ({len(view.automations)}, {enabled} enabled)"
        if not view.automations:
            title += " — none yet: operator automations apply FILE adds one"
        self.query_one("#automations-title", Static).update(Text(title))
        self.query_one("#executions-title", Static).update(
            Text(f"Executions ({in_flight} in flight, newest first)")
        )
        self._fill(
            "#automations-table",
            [(a.name, self._automation_cells(a, view)) for a in view.automations],
        )
        self._fill(
            "#executions-table",
            [(str(e.id), self._execution_cells(e)) for e in view.executions],
        )

    @staticmethod
    def _automation_cells(a: Automation, view: AutomationsView) -> tuple[Text, ...]:
        return (
            Text(clip(a.name, 26), style="bold"),
            Text(f"v{a.current_version}"),
            Text("✓ on", style="green") if a.enabled else Text("✗ off", style="dim"),
            Text(clip(a.trigger_event, 18)),
            Text(clip(a.scope, 16)),
            last_execution(view.latest.get(a.name)),
        )

    @staticmethod
    def _execution_cells(e: Execution) -> tuple[Text, ...]:
        return (
            Text(f"#{e.id}"),
            Text(f"#{e.ticket_id}"),
            Text(clip(f"{e.automation_name} v{e.version}", 30)),
            execution_status(e.status),
            Text(clip(e.current_node or "—", 14)),
            Text(progress(e)),
            Text(full_time(e.created_at)),
        )

    def _fill(self, selector: str, rows: list[tuple[str, tuple[Text, ...]]]) -> None:
        """Replace the rows, the cursor staying on the same item when it is still there."""
        table = self.query_one(selector, FixedTable)
        selected = self._selected_key(table)
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected), animate=False)

    @staticmethod
    def _selected_key(table: DataTable[object]) -> str | None:
        if table.row_count == 0:
            return None
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return row_key.value

    def selected_automation(self) -> Automation | None:
        key = self._selected_key(self.query_one("#automations-table", FixedTable))
        found = [a for a in self.view.automations if a.name == key] if self.view else []
        return found[0] if found else None

    def selected_execution(self) -> Execution | None:
        key = self._selected_key(self.query_one("#executions-table", FixedTable))
        found = [e for e in self.view.executions if str(e.id) == key] if self.view else []
        return found[0] if found else None

    # ------------------------------------------------------------------ enter

    @on(DataTable.RowSelected, "#automations-table")
    def _open_history(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.app.push_screen(HistoryScreen(self._db, event.row_key.value))

    @on(DataTable.RowSelected, "#executions-table")
    def _open_execution(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.app.push_screen(ExecutionScreen(self._db, int(event.row_key.value)))

    # ------------------------------------------------------------------ keys that act

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
        done = f"{verb}d automation {a.name}"
        changed = await ops._apply(f"{verb.lower()} automation {a.name}", call)
        if changed is not None:
            self.notify(done if changed else f"{a.name} was already {verb.lower()}d", markup=False)
        self.changed()
