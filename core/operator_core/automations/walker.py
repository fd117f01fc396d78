"""An execution's walk through its frozen definition, as a pure state machine.

``advance(definition, state, event, now=..., ticket=..., workflow=...)`` returns the new
state and the steps the runner must take (propose an action, wake at a time, cancel a
proposal, record the end). Time is always passed in, never read, so delays and timeouts are
tested without sleeping; the state is plain JSON for storage. Conditions are evaluated
inline against the ticket snapshot the caller passes with every event.

A node runs once all its predecessors are settled and at least one edge into it was taken
(its source completed, or failed with ``continueOnError``, and for a condition the edge's
``sourceHandle`` is the branch taken); when none was, the node is ``skipped``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from operator_core.automations.conditions import TicketFacts, evaluate_condition
from operator_core.automations.definition import (
    ActionNode,
    AutomationDefinition,
    ConditionNode,
    DelayNode,
    TriggerNode,
)
from operator_core.automations.placeholders import PlaceholderError, WorkflowFacts, render_text
from operator_core.model.execution_state import (
    CANCELLED,
    COMPLETED,
    FAILED,
    FINISHED,
    NODE_SETTLED,
    PENDING,
    RUNNING,
    ExecutionState,
    NodeResult,
)


# Events: what happened since the last call.
@dataclass(frozen=True)
class Start:
    """The trigger fired (or a manual run): the execution begins."""


@dataclass(frozen=True)
class ActionProposed:
    node_id: str
    proposal_id: int


@dataclass(frozen=True)
class ActionFinished:
    """The node's proposal ended: completed (``ok``), or failed or cancelled for good."""

    node_id: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class Tick:
    """Time passed: delays due by ``now`` end, and the deadline is checked."""


@dataclass(frozen=True)
class Cancel:
    """Stop the execution (ticket resolved, kill switch, an operator)."""

    reason: str


Event = Start | ActionProposed | ActionFinished | Tick | Cancel


# Steps: what the runner must do.
@dataclass(frozen=True)
class ProposeAction:
    node_id: str
    action: str
    parameters: dict[str, Any]
    reason: str
    max_retries: int | None = None
    retry_initial_delay_seconds: float | None = None


@dataclass(frozen=True)
class WaitUntil:
    node_id: str
    due_at: datetime


@dataclass(frozen=True)
class CancelProposal:
    node_id: str
    proposal_id: int
    reason: str


@dataclass(frozen=True)
class Finished:
    status: str
    error: str | None = None


Step = ProposeAction | WaitUntil | CancelProposal | Finished


@dataclass
class Advance:
    state: ExecutionState
    steps: list[Step]


class _Walk:
    def __init__(
        self,
        d: AutomationDefinition,
        state: ExecutionState,
        now: datetime,
        ticket: TicketFacts,
        workflow: WorkflowFacts,
    ) -> None:
        self.d, self.state, self.now = d, state, now
        self.ticket, self.workflow = ticket, workflow
        self.steps: list[Step] = []

    def finish(self, status: str, error: str | None = None) -> None:
        for node_id, proposal_id in self.state.stop(status, error, self.now):
            self.steps.append(CancelProposal(node_id, proposal_id, error or status))
        self.steps.append(Finished(status, error))

    def passes(self, node_id: str, handle: str | None) -> bool:
        """Whether an edge leaving ``node_id`` (with ``handle``) was taken."""
        result = self.state.nodes[node_id]
        node = self.d.node(node_id)
        if result.status == "failed":
            return isinstance(node, ActionNode) and node.data.continue_on_error
        if result.status != "completed":
            return False
        if isinstance(node, ConditionNode):
            return handle == ("true" if result.branch else "false")
        return True

    def progress(self) -> None:
        """Start every node that became ready. One pass in topological order suffices: a
        node that settles at once (condition, trigger, zero delay) precedes its children."""
        if self.state.status == RUNNING:
            for node_id in self.d.order:
                if node_id in self.state.nodes:
                    continue
                edges = self.d.incoming(node_id)
                if any(
                    self.state.nodes.get(e.source) is None
                    or self.state.nodes[e.source].status not in NODE_SETTLED
                    for e in edges
                ):
                    continue
                # Only the trigger node has no edge in (validation sees to it).
                if not edges or any(self.passes(e.source, e.source_handle) for e in edges):
                    self.run(node_id)
                else:
                    self.state.nodes[node_id] = NodeResult("skipped", self.now, self.now)
                if self.state.status != RUNNING:
                    return
        if self.state.status == RUNNING and all(
            n.id in self.state.nodes and self.state.nodes[n.id].status in NODE_SETTLED
            for n in self.d.nodes
        ):
            self.finish(COMPLETED)

    def run(self, node_id: str) -> None:
        node = self.d.node(node_id)
        now = self.now
        if isinstance(node, TriggerNode):
            self.state.nodes[node_id] = NodeResult("completed", now, now)
        elif isinstance(node, ConditionNode):
            branch = evaluate_condition(node.data, self.ticket)
            self.state.nodes[node_id] = NodeResult("completed", now, now, branch=branch)
        elif isinstance(node, DelayNode):
            due = now + timedelta(minutes=node.data.duration_minutes)
            if due <= now:
                self.state.nodes[node_id] = NodeResult("completed", now, now)
            else:
                self.state.nodes[node_id] = NodeResult("waiting", now, due_at=due)
                self.steps.append(WaitUntil(node_id, due))
        else:
            self.propose(node)

    def propose(self, node: ActionNode) -> None:
        data = node.data
        default_reason = (
            f'automation "{self.workflow.name}" v{self.workflow.version}, node "{node.id}"'
        )
        try:
            params = {
                k: render_text(v, self.ticket, self.workflow) if isinstance(v, str) else v
                for k, v in data.parameters.items()
            }
            reason = render_text(data.reason, self.ticket, self.workflow) or default_reason
        except PlaceholderError as exc:
            self.state.nodes[node.id] = NodeResult("running", self.now)
            self.fail_node(node.id, str(exc))
            return
        self.state.nodes[node.id] = NodeResult("running", self.now)
        retry = data.retry
        self.steps.append(
            ProposeAction(
                node_id=node.id,
                action=data.action,
                parameters=params,
                reason=reason,
                max_retries=None if retry is None else retry.attempts - 1,
                retry_initial_delay_seconds=None
                if retry is None
                else retry.initial_delay_ms / 1000,
            )
        )

    def fail_node(self, node_id: str, error: str) -> None:
        result = self.state.nodes[node_id]
        result.status, result.completed_at, result.error = "failed", self.now, error
        node = self.d.node(node_id)
        if not (isinstance(node, ActionNode) and node.data.continue_on_error):
            self.finish(FAILED, f'node "{node_id}" failed: {error}')

    def apply(self, event: Event) -> None:
        nodes = self.state.nodes
        if isinstance(event, Start):
            if self.state.status != PENDING:
                return
            self.state.status, self.state.started_at = RUNNING, self.now
            self.state.deadline = self.now + timedelta(seconds=self.d.settings.timeout_seconds)
        elif isinstance(event, Cancel):
            self.finish(CANCELLED, event.reason)
            return
        elif isinstance(event, ActionProposed):
            result = nodes.get(event.node_id)
            if result is not None and result.status == "running":
                result.proposal_id = event.proposal_id
        elif isinstance(event, ActionFinished):
            result = nodes.get(event.node_id)
            if result is None or result.status != "running":
                return  # a duplicate or late report: the node already moved on
            if event.ok:
                result.status, result.completed_at = "completed", self.now
            else:
                self.fail_node(event.node_id, event.error or "failed")
        if self.state.status != RUNNING:
            return
        if self.state.deadline is not None and self.now >= self.state.deadline:
            self.finish(FAILED, f"timed out after {self.d.settings.timeout}")
            return
        for result in nodes.values():
            if (
                result.status == "waiting"
                and result.due_at is not None
                and result.due_at <= self.now
            ):
                result.status, result.completed_at = "completed", self.now
        self.progress()


def advance(
    definition: AutomationDefinition,
    state: ExecutionState,
    event: Event,
    *,
    now: datetime,
    ticket: TicketFacts | Mapping[str, Any],
    workflow: WorkflowFacts,
) -> Advance:
    """The state after ``event`` at ``now`` and the steps to take; ``state`` is not changed.
    Events for a finished execution, or for a node that already moved on, change nothing."""
    new = state.copy()
    if new.status in FINISHED:
        return Advance(new, [])
    walk = _Walk(definition, new, now, TicketFacts.of(ticket), workflow)
    walk.apply(event)
    return Advance(new, walk.steps)
