"""Enter in the Automations view: an execution (its frozen definition as a tree with each
node's state and result, the proposals it made, its times and error) or an automation's
version history (version, when, who, note). Read-only; both follow the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from operator_core.db.automation_views import execution_detail, version_history
from operator_core.errors import OperatorError
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from operator_tui.format import full_time, plain
from operator_tui.screens.automation_keys import CANCEL, ELSEWHERE, TOGGLE, ActingScreen

if TYPE_CHECKING:
    from operator_core.db.actions import ActionDB
    from operator_core.db.automations import Automation, AutomationVersion
    from operator_core.db.executions import Execution, ExecutionProposal

EXECUTION_MARK = {
    "PENDING": ("·", "pending", ""),
    "RUNNING": ("▶", "running", "bold"),
    "COMPLETED": ("✓", "completed", "green"),
    "FAILED": ("✗", "failed", "red"),
    "CANCELLED": ("⊘", "cancelled", "dim"),
}
"""Each execution status as a mark and a word (readable without colour) and a style."""

STATE_STYLE = {
    "completed": "green",
    "failed": "red",
    "running": "bold",
    "waiting": "bold",
    "cancelled": "dim",
    "skipped": "dim",
}


def execution_status(status: str) -> Text:
    mark, word, style = EXECUTION_MARK.get(status, ("?", status.lower(), ""))
    return Text(f"{mark} {word}", style=style)


def _section(title: str) -> Text:
    return Text(title, style="bold underline")


def _fields(rows: list[tuple[str, RenderableType]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=12)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, plain(value) if isinstance(value, str) else value)
    return table


def tree_lines(e: Execution) -> RenderableType:
    """The frozen definition as ``automations.tree`` draws it, each node with its state and
    result. (Imported here: the definition's models are pydantic, which the dashboard loads
    only after its first frame.)"""
    from operator_core.automations.definition import parse_definition
    from operator_core.automations.tree import render_tree

    try:
        definition = parse_definition(e.definition, f"execution {e.id}")
    except OperatorError as exc:
        return Text(f"cannot read the frozen definition: {exc}", style="red")
    return Text("\n".join(render_tree(definition, e.state)))


def node_times(e: Execution) -> RenderableType:
    if not e.state.nodes:
        return Text("no node has run yet", style="dim")
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("Node", "State", "Started", "Finished", "Proposal", "Error"):
        table.add_column(column, overflow="fold")
    order = [n.get("id") for n in e.definition.get("nodes", [])]
    nodes = sorted(
        e.state.nodes.items(),
        key=lambda item: order.index(item[0]) if item[0] in order else len(order),
    )
    for node_id, r in nodes:
        table.add_row(
            plain(node_id),
            Text(r.status, style=STATE_STYLE.get(r.status, "")),
            full_time(r.started_at),
            full_time(r.completed_at),
            f"#{r.proposal_id}" if r.proposal_id is not None else "—",
            plain(r.error or ""),
        )
    return table


def made_proposals(made: list[ExecutionProposal]) -> RenderableType:
    if not made:
        return Text("none yet", style="dim")
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("Proposal", "Node", "Status", "Error / reason"):
        table.add_column(column, overflow="fold")
    for p in made:
        table.add_row(
            f"#{p.id}",
            plain(p.node or "—"),
            p.status,
            plain(p.last_error or p.cancel_reason or ""),
        )
    return table


class _DetailBase(ActingScreen):
    DEFAULT_CSS = """
    _DetailBase #automation-detail {
        padding: 0 1;
    }
    """
    BINDINGS = [*ELSEWHERE, Binding("escape,backspace", "close", "Back", key_display="esc")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="automation-detail"):
            yield Static("loading…", id="automation-detail-title")
            yield Static("", id="automation-detail-body")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)

    def _show(self, title: Text, body: RenderableType) -> None:
        self.query_one("#automation-detail-title", Static).update(title)
        self.query_one("#automation-detail-body", Static).update(body)


class ExecutionScreen(_DetailBase):
    BINDINGS = CANCEL

    def __init__(self, db: ActionDB, execution_id: int) -> None:
        super().__init__(db)
        self.execution_id = execution_id
        self.execution: Execution | None = None

    def selected_execution(self) -> Execution | None:
        return self.execution

    async def reload(self) -> None:
        e, made = await self._db.read(execution_detail, self.execution_id)
        self.execution = e
        if e is None:
            gone = Text(f"execution #{self.execution_id} no longer exists", style="bold red")
            self._show(gone, Text(""))
            return
        title = Text(f"Execution #{e.id} ", style="bold")
        title.append(f"{e.automation_name} v{e.version}", style="bold")
        title.append(f" on ticket #{e.ticket_id}  ")
        title.append_text(execution_status(e.status))
        self._show(
            Text.assemble(title),
            Group(
                _fields(self._fields(e)),
                Text(""),
                _section(f"Definition (frozen at v{e.version})"),
                tree_lines(e),
                Text(""),
                _section("Nodes"),
                node_times(e),
                Text(""),
                _section(f"Proposals made ({len(made)})"),
                made_proposals(made),
            ),
        )

    @staticmethod
    def _fields(e: Execution) -> list[tuple[str, RenderableType]]:
        rows: list[tuple[str, RenderableType]] = [
            ("Status", e.status.lower()),
            ("Trigger", e.trigger),
            ("Started", f"{full_time(e.created_at)} by {e.started_by}"),
            ("Finished", full_time(e.finished_at)),
            ("Current node", e.current_node or "—"),
        ]
        if e.next_wake_at is not None:
            rows.append(("Next wake", full_time(e.next_wake_at)))
        if e.state.deadline is not None:
            rows.append(("Times out", full_time(e.state.deadline)))
        if e.error:
            rows.append(("Error", Text(plain(e.error).plain, style="red")))
        return rows


class HistoryScreen(_DetailBase):
    BINDINGS = TOGGLE

    def __init__(self, db: ActionDB, name: str) -> None:
        super().__init__(db)
        self.name_shown = name
        self.automation: Automation | None = None

    def selected_automation(self) -> Automation | None:
        return self.automation

    async def reload(self) -> None:
        a, versions = await self._db.read(version_history, self.name_shown)
        self.automation = a
        if a is None:
            gone = Text(f"automation {self.name_shown!r} no longer exists", style="bold red")
            self._show(gone, Text(""))
            return
        title = Text.assemble(
            (f"Automation {a.name}", "bold"),
            f"  v{a.current_version}, {'enabled' if a.enabled else 'disabled'}",
        )
        self._show(
            title,
            Group(
                _fields(self._fields(a)),
                Text(""),
                _section(f"Versions ({len(versions)}, newest first)"),
                self._versions(a, versions),
            ),
        )

    @staticmethod
    def _fields(a: Automation) -> list[tuple[str, RenderableType]]:
        return [
            ("Scope", a.scope),
            ("Trigger", a.trigger_event),
            ("Created", f"{full_time(a.created_at)} by {a.created_by}"),
            ("Changed", f"{full_time(a.updated_at)} by {a.updated_by}"),
        ]

    @staticmethod
    def _versions(a: Automation, versions: list[AutomationVersion]) -> RenderableType:
        table = Table(box=None, padding=(0, 1), header_style="bold")
        for column in ("Version", "When (UTC)", "Who", "Note"):
            table.add_column(column, overflow="fold")
        for v in reversed(versions):
            number = f"v{v.version}" + (" (current)" if v.version == a.current_version else "")
            note = v.note or ""
            if v.copied_from is not None:
                note = f"rollback to v{v.copied_from}" + (f": {note}" if note else "")
            table.add_row(number, full_time(v.changed_at), plain(v.changed_by), plain(note or "—"))
        return table
