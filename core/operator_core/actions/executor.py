"""ActionExecutor: the one place that changes action state.

The CLI, the dashboard, the runner and the demo agent all go through it. Every mutation
records its actor and writes its audit event in the same transaction. Its parts live in
modules of their own: ``executor_base`` (state, policy, shared checks), ``tickets``,
``automations`` (storing definitions), ``automation_runs`` (executions), ``proposing``,
``workflow_proposals``, ``budgeting`` (agents' budgets), ``decisions``, ``emergency``
(kill switch) and ``execution``.
"""

from __future__ import annotations

from operator_core.actions.automation_runs import RunningAutomations
from operator_core.actions.automations import Automating
from operator_core.actions.budgeting import Budgeting
from operator_core.actions.decisions import CANCEL_REASON, Deciding, Decision, TargetKind
from operator_core.actions.emergency import EmergencyStop
from operator_core.actions.execution import Executing, Outcome
from operator_core.actions.proposing import Proposing
from operator_core.actions.tickets import Ticketing
from operator_core.actions.workflow_proposals import WorkflowProposing

__all__ = ["CANCEL_REASON", "ActionExecutor", "Decision", "Outcome", "TargetKind"]


class ActionExecutor(
    Ticketing,
    Automating,
    RunningAutomations,
    Proposing,
    WorkflowProposing,
    Budgeting,
    Deciding,
    EmergencyStop,
    Executing,
):
    """Validates, proposes, approves, rejects, cancels, executes and retries actions."""
