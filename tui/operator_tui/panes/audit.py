"""The Audit view's table: audit events, oldest at the top, newest at the bottom, as a log."""

from __future__ import annotations

from operator_core.db.audit_view import Entry
from operator_core.safe_text import visible
from rich.text import Text

from operator_tui.data import DashboardData, Target
from operator_tui.format import clip
from operator_tui.panes.base import PaneTable, Row
from operator_tui.widgets.event_tail import describe, event_style


def subject(entry: Entry) -> str:
    """``#12 restart_service``, ``wf2 deploy``, or empty (a kill switch, a mode change)."""
    event = entry.event
    if event.proposal_id is not None:
        return f"#{event.proposal_id} {entry.action or ''}".strip()
    if entry.workflow_id is not None:
        return f"wf{entry.workflow_id} {entry.workflow or ''}".strip()
    return ""


def target_of(entry: Entry) -> Target | None:
    """What enter opens: the event's action, else its workflow."""
    event = entry.event
    if event.proposal_id is not None:
        return Target(
            "action",
            event.proposal_id,
            f"action #{event.proposal_id} {visible(entry.action or '')}",
        )
    return workflow_of(entry)


def workflow_of(entry: Entry) -> Target | None:
    if entry.workflow_id is None:
        return None
    return Target(
        "workflow",
        entry.workflow_id,
        f"workflow wf{entry.workflow_id} {visible(entry.workflow or '')}",
    )


class AuditTable(PaneTable):
    TITLE = "Audit log"
    SORTS = ("oldest at the top",)
    COLUMNS = (
        ("id", "Event", 6),
        ("at", "Time (UTC)", 15),
        ("type", "Type", 19),
        ("on", "On", 18),
        ("actor", "Actor", 16),
        ("detail", "Detail", 30),
    )
    EMPTY = "no events"

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.entries: dict[str, Entry] = {}
        self.filter_note = ""
        """The kept filter, as typed (said in the title)."""
        self.state_note = ""
        """``following`` or ``paused · 12 new`` (said in the subtitle)."""
        # The Detail column takes the width the terminal has when the view opens (borders,
        # scrollbar and each column's two cells of padding aside), 30 at least.
        fixed = sum(width + 2 for _, _, width in self.COLUMNS[:-1])
        self.detail_width = max(self.COLUMNS[-1][2], self.app.size.width - 6 - fixed)
        self.COLUMNS = (*self.COLUMNS[:-1], ("detail", "Detail", self.detail_width))

    def total(self, data: DashboardData) -> int:
        return len(self._rows)

    def show_entries(self, entries: list[Entry]) -> None:
        """Show ``entries`` (every page read so far, oldest first). The rows already shown
        are kept as they are (an event never changes): a page appended formats only its
        own rows."""
        made = {row.key: row for row in self._rows}
        self._rows = [
            made.get(f"e{e.event.id}") or self._row(e, self.detail_width) for e in entries
        ]
        self.entries = {row.key: row.model for row in self._rows}
        self._total = len(self._rows)
        self._render_rows()

    def action_toggle_mark(self) -> None:
        """Marks gather rows for one decision in a dashboard pane; events are not decided."""
        self.app.notify("Marks are for the dashboard's panes, not the audit log.", markup=False)

    def set_state(self, note: str) -> None:
        """``following``, ``paused · 12 new ↓``... in the subtitle."""
        self.state_note = note
        self._update_titles()

    def selected_entry(self) -> Entry | None:
        key = self._cursor_key()
        return self.entries.get(key) if key is not None else None

    @property
    def at_end(self) -> bool:
        """The cursor is on the newest event shown (or there is none)."""
        return self.cursor_row >= self.row_count - 1

    def go_to_end(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    @staticmethod
    def _row(entry: Entry, width: int) -> Row:
        event = entry.event
        return Row(
            key=f"e{event.id}",
            cells=lambda: (
                str(event.id),
                event.timestamp.strftime("%m-%d %H:%M:%SZ"),
                Text(clip(event.event_type, 19), style=event_style(event.event_type)),
                clip(subject(entry), 18),
                Text(clip(event.actor, 16), style="dim"),
                clip(describe(event), width),
            ),
            target=target_of(entry),
            search="",
            model=entry,
        )

    def _render_rows(self) -> None:
        super()._render_rows()
        # Rows without an action or workflow are still events to read: the cursor stops on
        # them too (the base shows a cursor only over rows with a target).
        self.show_cursor = bool(self.entries)

    def _update_titles(self) -> None:
        title = f"{self.TITLE} · {self._total} shown"
        if self.filter_note:
            title += f" · filter: {clip(self.filter_note, 40)}"
        self.border_title = Text(title)
        self.border_subtitle = self.state_note
