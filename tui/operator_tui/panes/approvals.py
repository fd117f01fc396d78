"""#approvals: single actions and whole workflows waiting for a human decision."""

from __future__ import annotations

from datetime import datetime

from operator_core.safe_text import visible
from rich.console import RenderableType
from rich.text import Text

from operator_tui.data import DashboardData, action_target, workflow_target
from operator_tui.format import age, clip, params
from operator_tui.panes.base import PaneTable, Row


class ApprovalsPane(PaneTable):
    TITLE = "Approvals"
    COLUMNS = (
        ("id", "ID", 5),
        ("what", "Action", 24),
        ("age", "Waiting", 11),
        ("params", "Parameters / steps", 36),
        ("by", "Proposed by", 12),
        ("reason", "Reason", 60),
    )
    TICKING = ("age",)
    EMPTY = "nothing awaits approval"

    def total(self, data: DashboardData) -> int:
        return data.counts.awaiting_approval + data.counts.workflows_awaiting_approval

    def rows_for(self, data: DashboardData, now: datetime) -> list[Row]:
        rows: list[tuple[datetime, Row]] = []
        for p in data.approvals:
            target = action_target(p)
            rows.append(
                (
                    p.proposed_at,
                    Row(
                        key=target.key,
                        cells=lambda p=p: (
                            f"#{p.id}",
                            Text(p.action_name, style="bold"),
                            age(p.proposed_at, now),
                            params(p.parameters, 36),
                            p.proposed_by,
                            clip(p.reason, 60),
                        ),
                        target=target,
                        search=lambda p=p: (
                            f"#{p.id} {p.action_name} {params(p.parameters, 500)} {p.proposed_by} "
                            f"{p.reason}"
                        ),
                        model=p,
                    ),
                )
            )
        for wf in data.workflows_awaiting:
            target = workflow_target(wf)
            names = [s.action_name for s in data.steps.get(wf.id or 0, [])]
            chain = f"{len(names)} steps: " + " → ".join(names)
            rows.append(
                (
                    wf.created_at,
                    Row(
                        key=target.key,
                        cells=(
                            f"wf{wf.id}",
                            Text.assemble(("workflow ", "italic"), (visible(wf.name), "bold")),
                            age(wf.created_at, now),
                            clip(chain, 36),
                            wf.proposed_by,
                            clip(wf.description, 60),
                        ),
                        target=target,
                        search=(
                            f"wf{wf.id} workflow {wf.name} {chain} {wf.proposed_by} "
                            f"{wf.description}"
                        ),
                        model=wf,
                    ),
                )
            )
        rows.sort(key=lambda pair: pair[0])
        return [row for _, row in rows]

    def tick_cells(self, row: Row, now: datetime) -> dict[str, RenderableType]:
        since = getattr(row.model, "proposed_at", None) or getattr(row.model, "created_at", None)
        return {"age": age(since, now)}

    def tick_times(self, row: Row) -> tuple[datetime | None, ...] | None:
        return (getattr(row.model, "proposed_at", None) or getattr(row.model, "created_at", None),)
