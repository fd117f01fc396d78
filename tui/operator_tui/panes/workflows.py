"""#workflows: open chains, one row per workflow and one per step, with progress."""

from __future__ import annotations

from datetime import datetime

from operator_core.model.states import ActionStatus
from operator_core.model.views import ProposalState, ProposalView, WorkflowView
from operator_core.safe_text import visible
from rich.console import RenderableType
from rich.text import Text

from operator_tui.data import DashboardData, action_target, awaits_approval, workflow_target
from operator_tui.format import CELL_LIMIT, params, step_state
from operator_tui.panes.base import PaneTable, Row


def progress_bar(steps: list[ProposalView], width: int = 4) -> str:
    done = sum(1 for s in steps if s.status == ActionStatus.COMPLETED)
    total = len(steps) or 1
    filled = round(width * done / total)
    return f"{'▰' * filled}{'▱' * (width - filled)} {done}/{len(steps)}"


def workflow_state(wf: WorkflowView, steps: list[ProposalView]) -> Text:
    if awaits_approval(wf):
        return Text("◇ awaiting approval", style="bold yellow")
    running = next((s for s in steps if s.status == ActionStatus.EXECUTING), None)
    if running is not None:
        return Text(f"▶ step {running.execution_order + 1} running", style="bold")
    if any(s.is_retry_waiting for s in steps):
        return Text("↻ retrying a step", style="yellow")
    if wf.approved_at is not None or not wf.requires_approval:
        return Text(f"◆ {wf.status.value.replace('_', ' ')}")
    return Text(wf.status.value)


class WorkflowsPane(PaneTable):
    TITLE = "Workflows"
    SORTS = ("age",)  # steps stay under their workflow
    COLUMNS = (
        ("id", "ID", 5),
        ("name", "Workflow / step", 15),
        ("state", "State", 19),
        ("progress", "Progress", 8),
        ("info", "Detail", 10),
    )
    GROW = {"name": 1, "progress": 1, "info": 3}
    DROP = ("info", "progress")
    TICKING = ("state",)
    EMPTY = "no open workflows"

    def total(self, data: DashboardData) -> int:
        return data.counts.workflows_open

    def rows_for(self, data: DashboardData, now: datetime) -> list[Row]:
        rows = []
        for wf in data.workflows:
            steps = data.steps.get(wf.id or 0, [])
            target = workflow_target(wf, steps)
            ticket = f"ticket #{wf.ticket_id} · " if wf.ticket_id else ""
            rows.append(
                Row(
                    key=target.key,
                    cells=lambda wf=wf, steps=steps, ticket=ticket: (
                        f"wf{wf.id}",
                        Text(visible(wf.name), style="bold"),
                        workflow_state(wf, steps),
                        progress_bar(steps),
                        f"{ticket}by {wf.proposed_by}",
                    ),
                    target=target,
                    search=f"wf{wf.id} {wf.name} {wf.description}",
                    model=wf,
                )
            )
            for step in steps:
                step_target = action_target(step)
                rows.append(
                    Row(
                        key=step_target.key,
                        cells=lambda step=step: (
                            f"#{step.id}",
                            f"  {step.execution_order + 1}. {step.action_name}",
                            step_state(step, now),
                            self._step_note(step),
                            params(step.parameters, CELL_LIMIT),
                        ),
                        target=step_target,
                        search=f"#{step.id} {step.action_name} wf{wf.id} {wf.name}",
                        model=step,
                    )
                )
        return rows

    @staticmethod
    def _step_note(step: ProposalView) -> str:
        if step.delay_seconds and step.status == ActionStatus.VALIDATED:
            return f"+{step.delay_seconds:g}s after prev"
        if step.retry_count:
            return f"attempt {step.retry_count + 1}/{step.max_retries + 1}"
        return ""

    def tick_cells(self, row: Row, now: datetime) -> dict[str, RenderableType]:
        if isinstance(row.model, ProposalState):
            return {"state": step_state(row.model, now)}
        return {}

    def tick_times(self, row: Row) -> tuple[datetime | None, ...] | None:
        step = row.model
        if isinstance(step, ProposalState) and step.status == ActionStatus.VALIDATED:
            return (step.scheduled_at,)
        return ()
