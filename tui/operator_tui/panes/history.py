"""The History view's table: finished actions, newest first, a page at a time."""

from __future__ import annotations

from datetime import datetime

from operator_core.db.history import Finished
from rich.text import Text

from operator_tui.data import DashboardData, action_target
from operator_tui.format import CELL_LIMIT, clip, finished_state, params
from operator_tui.panes.base import PaneTable, Row


def when(at: datetime | None) -> str:
    return at.strftime("%m-%d %H:%M:%SZ") if at is not None else "—"


def why(f: Finished) -> str:
    """What an approver reads first about how it ended: the error, the rejection's or the
    cancel's reason, else the proposal's reason."""
    p = f.proposal
    return p.last_error or p.rejection_reason or p.cancel_reason or p.reason


class HistoryTable(PaneTable):
    TITLE = "History"
    SORTS = ("newest",)
    COLUMNS = (
        ("id", "ID", 6),
        ("finished", "Finished (UTC)", 15),
        ("state", "Outcome", 11),
        ("action", "Action", 14),
        ("attempts", "Attempts", 8),
        ("params", "Parameters", 14),
        ("by", "Proposed by", 12),
        ("why", "Error / reason", 14),
    )
    GROW = {"action": 1, "params": 2, "why": 3}
    DROP = ("by", "attempts", "params")
    EMPTY = "no finished work yet"

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.more = False
        """More pages below the last row."""
        self.searched = ""

    def total(self, data: DashboardData) -> int:
        return len(self._rows)

    def show_items(self, items: list[Finished], more: bool, searched: str = "") -> None:
        """Show ``items`` (every page read so far); ``more``: the history goes on below."""
        self.more = more
        self.searched = searched
        self._rows = [self._row(f) for f in items]
        self._total = len(self._rows)
        self._render_rows()

    @staticmethod
    def _row(f: Finished) -> Row:
        p = f.proposal
        target = action_target(p)
        return Row(
            key=target.key,
            cells=lambda: (
                f"#{p.id}",
                when(f.finished_at),
                finished_state(p),
                Text(clip(p.action_name, CELL_LIMIT), style="bold"),
                f"{f.attempts} of {p.max_retries + 1}",
                params(p.parameters, CELL_LIMIT),
                clip(p.proposed_by, CELL_LIMIT),
                clip(why(f), CELL_LIMIT),
            ),
            target=target,
            search="",
            model=f,
        )

    def _update_titles(self) -> None:
        self.border_title = f"{self.TITLE} · newest first"
        notes = []
        if self.searched:
            notes.append(f"search: {self.searched}")
        notes.append(f"{self._total} shown" + (" · more below" if self.more else " · the end"))
        self.border_subtitle = " · ".join(notes)
