"""The five dashboard panes, by widget id, in the order of their keys (``1``-``5``)."""

from __future__ import annotations

from operator_tui.panes.approvals import ApprovalsPane
from operator_tui.panes.base import PaneTable
from operator_tui.panes.retries import RetriesPane
from operator_tui.panes.running import RunningPane
from operator_tui.panes.scheduled import ScheduledPane
from operator_tui.panes.workflows import WorkflowsPane

PANES: tuple[tuple[str, str, type[PaneTable]], ...] = (
    ("approvals", "Approvals", ApprovalsPane),
    ("running", "Running", RunningPane),
    ("workflows", "Workflows", WorkflowsPane),
    ("scheduled", "Scheduled", ScheduledPane),
    ("retries", "Retries", RetriesPane),
)

__all__ = [
    "PANES",
    "ApprovalsPane",
    "PaneTable",
    "RetriesPane",
    "RunningPane",
    "ScheduledPane",
    "WorkflowsPane",
]
