"""#retries: failed actions waiting for their next attempt (backoff), soonest first."""

from __future__ import annotations

from datetime import datetime

from rich.console import RenderableType
from rich.text import Text

from operator_tui.data import ROW_LIMIT, DashboardData, action_target
from operator_tui.format import CELL_LIMIT, attempt_of, clip, clock_time, countdown
from operator_tui.panes.base import PaneTable, Row


class RetriesPane(PaneTable):
    TITLE = "Retries"
    COLUMNS = (
        ("id", "ID", 5),
        ("action", "Action", 12),
        ("attempt", "Attempt", 7),
        ("next", "Next (UTC)", 10),
        ("in", "Countdown", 9),
        ("error", "Last error", 12),
    )
    GROW = {"action": 1, "error": 3}
    DROP = ("next", "attempt")
    TICKING = ("in",)
    EMPTY = "no retries waiting"

    def total(self, data: DashboardData) -> int:
        if len(data.retries) >= data.rows_read:
            return max(data.counts.retry_waiting, len(data.retries))
        return len(data.retries)

    def listed(self, data: DashboardData) -> int:
        return min(self.total(data), ROW_LIMIT)

    def rows_for(self, data: DashboardData, now: datetime) -> list[Row]:
        rows = []
        for p in data.retries:
            target = action_target(p)
            # retry_count retries are scheduled so far: the next run is attempt retry_count+1
            # of the 1 + max_retries the action is allowed.
            attempt = attempt_of(p).removeprefix("attempt ")  # under "Attempt": "2 of 4"
            rows.append(
                Row(
                    key=target.key,
                    cells=lambda p=p, attempt=attempt: (
                        f"#{p.id}",
                        Text(p.action_name, style="bold"),
                        attempt,
                        clock_time(p.next_retry_at),
                        countdown(p.next_retry_at, now),
                        Text(clip(p.last_error or "", CELL_LIMIT), style="red"),
                    ),
                    target=target,
                    search=f"#{p.id} {p.action_name} {p.last_error or ''}",
                    model=p,
                )
            )
        return rows

    def tick_cells(self, row: Row, now: datetime) -> dict[str, RenderableType]:
        return {"in": countdown(row.model.next_retry_at, now)}

    def tick_times(self, row: Row) -> tuple[datetime | None, ...] | None:
        return (row.model.next_retry_at,)
