"""A definition as a readable tree of lines, with each node's state when an execution's is
given: what ``automations execution ID`` prints and the dashboard shows on enter.

A node with several parents is drawn in full under the first and as ``(see above)`` under
the others, so the tree stays a tree however the graph joins.
"""

from __future__ import annotations

from operator_core.automations.definition import (
    ActionNode,
    AutomationDefinition,
    ConditionNode,
    DelayNode,
    TriggerNode,
)
from operator_core.automations.walker import ExecutionState, NodeResult
from operator_core.safe_text import visible


def describe_node(node: TriggerNode | ActionNode | ConditionNode | DelayNode) -> str:
    if isinstance(node, TriggerNode):
        return "trigger"
    if isinstance(node, ActionNode):
        shown = f'action {node.data.action} "{node.data.name}"' if node.data.name else ""
        text = shown or f"action {node.data.action}"
        return text + (" (continue on error)" if node.data.continue_on_error else "")
    if isinstance(node, ConditionNode):
        return f"if {node.data.field} = {node.data.value}"
    return f"wait {node.data.duration_minutes:g} min"


def describe_result(result: NodeResult | None) -> str:
    if result is None:
        return "not reached"
    parts = [result.status]
    if result.status == "waiting" and result.due_at is not None:
        parts[0] = f"waiting until {result.due_at.strftime('%Y-%m-%d %H:%M:%S')}Z"
    if result.branch is not None:
        parts.append(f"took {'true' if result.branch else 'false'}")
    if result.proposal_id is not None:
        parts.append(f"proposal #{result.proposal_id}")
    if result.error:
        parts.append(result.error)
    return " · ".join(parts)


def render_tree(d: AutomationDefinition, state: ExecutionState | None = None) -> list[str]:
    """One line per node, indented under its parent, starting at the trigger node."""
    lines: list[str] = []
    drawn: set[str] = set()

    def line(node_id: str, prefix: str, branch: str, handle: str | None) -> None:
        node = d.node(node_id)
        label = f"[{handle}] " if handle else ""
        if node_id in drawn:
            lines.append(visible(f"{prefix}{branch}{label}{node_id}  (see above)"))
            return
        drawn.add(node_id)
        text = f"{prefix}{branch}{label}{node_id}  {describe_node(node)}"
        if state is not None:
            text += f"  {describe_result(state.nodes.get(node_id))}"
        lines.append(visible(text))
        children = d.outgoing(node_id)
        child_prefix = prefix + ("   " if branch in ("└─ ", "") else "│  ")
        for i, edge in enumerate(children):
            last = i == len(children) - 1
            line(
                edge.target,
                child_prefix if branch else "",
                "└─ " if last else "├─ ",
                edge.source_handle,
            )

    roots = [n.id for n in d.nodes if isinstance(n, TriggerNode)]
    for root in roots:
        line(root, "", "", None)
    return lines
