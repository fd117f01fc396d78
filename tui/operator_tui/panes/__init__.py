"""The four dashboard panes, by widget id."""

from operator_tui.panes.approvals import ApprovalsPane
from operator_tui.panes.base import PaneTable
from operator_tui.panes.retries import RetriesPane
from operator_tui.panes.scheduled import ScheduledPane
from operator_tui.panes.workflows import WorkflowsPane

__all__ = ["ApprovalsPane", "PaneTable", "RetriesPane", "ScheduledPane", "WorkflowsPane"]
