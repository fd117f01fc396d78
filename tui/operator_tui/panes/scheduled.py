"""#scheduled: actions waiting for their time, soonest first, with a live countdown."""

from __future__ import annotations

from datetime import datetime

from rich.console import RenderableType
from rich.text import Text

from operator_tui.data import ROW_LIMIT, DashboardData, action_target
from operator_tui.format import CELL_LIMIT, approval_state, clock_time, countdown, params
from operator_tui.panes.base import PaneTable, Row


class ScheduledPane(PaneTable):
    TITLE = "Scheduled"
    COLUMNS = (
        ("id", "ID", 5),
        ("action", "Action", 12),
        ("due", "Due (UTC)", 9),
        ("in", "Countdown", 9),
        ("params", "Parameters", 12),
        ("approval", "Approval", 10),
    )
    GROW = {"action": 1, "params": 2, "approval": 1}
    DROP = ("approval", "due")
    TICKING = ("in",)
    EMPTY = "nothing scheduled"

    def total(self, data: DashboardData) -> int:
        if len(data.scheduled) >= data.rows_read:
            return max(data.counts.scheduled, len(data.scheduled))
        return len(data.scheduled)

    def listed(self, data: DashboardData) -> int:
        return min(self.total(data), ROW_LIMIT)

    def rows_for(self, data: DashboardData, now: datetime) -> list[Row]:
        rows = []
        for p in data.scheduled:
            target = action_target(p)
            where = f" (wf{p.workflow_id} step {p.execution_order + 1})" if p.workflow_id else ""
            rows.append(
                Row(
                    key=target.key,
                    cells=lambda p=p, where=where: (
                        f"#{p.id}",
                        Text(p.action_name + where, style="bold"),
                        clock_time(p.scheduled_at),
                        countdown(p.scheduled_at, now),
                        params(p.parameters, CELL_LIMIT),
                        approval_state(p),
                    ),
                    target=target,
                    search=lambda p=p: (
                        f"#{p.id} {p.action_name} {params(p.parameters, 500)} {p.reason}"
                    ),
                    model=p,
                )
            )
        return rows

    def tick_cells(self, row: Row, now: datetime) -> dict[str, RenderableType]:
        return {"in": countdown(row.model.scheduled_at, now)}

    def tick_times(self, row: Row) -> tuple[datetime | None, ...] | None:
        return (row.model.scheduled_at,)
