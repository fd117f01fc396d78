"""``A``: the Automations view. The automations (version, enabled, scope, trigger, last
execution) and the executions in flight and recent (ticket, automation and version, status,
current node, node progress), following the database while shown.

Enter opens an execution's frozen definition as a tree, or an automation's version history.
``x`` cancels the selected execution and ``e`` enables or disables the selected automation,
each after a confirm, through the executor as every other key; definitions are never edited
here (``operator automations apply``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from operator_core.db.automation_views import AutomationsView, automations_view
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from operator_tui.format import clip, full_time
from operator_tui.screens.automation_detail import ExecutionScreen, HistoryScreen, execution_status
from operator_tui.screens.automation_keys import CANCEL, ELSEWHERE, TOGGLE, ActingScreen
from operator_tui.widgets.fixed_table import FixedTable

if TYPE_CHECKING:
    from operator_core.db.actions import ActionDB
    from operator_core.db.automations import Automation
    from operator_core.db.executions import Execution


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


class AutomationsScreen(ActingScreen):
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
        *CANCEL,
        *TOGGLE,
    ]

    def __init__(self, db: ActionDB) -> None:
        super().__init__(db)
        self.view: AutomationsView | None = None

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
        # (PolledScreen's on_mount runs too: Textual calls each class's handler.)
        self.query_one("#executions-table", FixedTable).focus()

    def action_close(self) -> None:
        self.dismiss(None)

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
