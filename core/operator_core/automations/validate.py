"""A definition checked completely before it is stored: one line for the first problem.

The line names the file, the node (or edge, or the trigger) and what is wrong, e.g.
``auto.json: node "restart": unknown action "restart_svc" (available: ...)``. Checks run in
phases (structure, graph, contents) and stop after the first phase that finds a problem, so
a later check can rely on the graph being sound.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from operator_core.actions.limits import delay_seconds
from operator_core.actions.registry import ActionDefinition, validate_action_params
from operator_core.automations.conditions import STATUSES, field_problem, value_problem
from operator_core.automations.definition import (
    ActionNode,
    AutomationDefinition,
    ConditionNode,
    DefinitionError,
    DelayNode,
    TriggerNode,
    load_definition,
)
from operator_core.automations.placeholders import has_placeholders, params_problem, text_problem
from operator_core.errors import ValidationError
from operator_core.safe_text import visible

TICKET_STATUSES = STATUSES


class RegistryLike(Protocol):
    """What validation needs of an ``ActionRegistry``."""

    def get_definition(self, name: str) -> ActionDefinition | None: ...

    def list_action_names(self) -> list[str]: ...


def _structure(d: AutomationDefinition) -> Iterator[str]:
    seen: set[str] = set()
    for n in d.nodes:
        if n.id in seen:
            yield f'node "{n.id}": the id is used by two nodes'
        seen.add(n.id)
    triggers = [n for n in d.nodes if isinstance(n, TriggerNode)]
    if not triggers:
        yield 'definition: no trigger node (one node must have type "trigger")'
    for extra in triggers[1:]:
        yield f'node "{extra.id}": a second trigger node (only one is allowed)'
    edge_ids: set[str] = set()
    for e in d.edges:
        if e.id in edge_ids:
            yield f'edge "{e.id}": the id is used by two edges'
        edge_ids.add(e.id)
        for end in ("source", "target"):
            if getattr(e, end) not in seen:
                yield f'edge "{e.id}": {end} "{getattr(e, end)}" is not a node'


def _edges(d: AutomationDefinition) -> Iterator[str]:
    for e in d.edges:
        source, target = d.node(e.source), d.node(e.target)
        if isinstance(target, TriggerNode):
            yield f'edge "{e.id}": leads into the trigger node "{target.id}"'
        if isinstance(source, ConditionNode) and e.source_handle is None:
            yield (
                f'edge "{e.id}": leaves condition node "{source.id}" without '
                'sourceHandle "true" or "false"'
            )
        if not isinstance(source, ConditionNode) and e.source_handle is not None:
            yield f'edge "{e.id}": sourceHandle is only for edges leaving a condition node'
    for n in d.nodes:
        if isinstance(n, ConditionNode):
            handles = {e.source_handle for e in d.outgoing(n.id)}
            missing = [h for h in ("true", "false") if h not in handles]
            if missing:
                yield (
                    f'node "{n.id}": a condition needs both a "true" and a "false" branch '
                    f'(no "{missing[0]}" edge)'
                )


def _cycle(d: AutomationDefinition) -> list[str] | None:
    """A cycle as a list of node ids (first repeated at the end), or None."""
    children: dict[str, list[str]] = {n.id: [] for n in d.nodes}
    for e in d.edges:
        children[e.source].append(e.target)
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in children:
        if root in state:
            continue
        path, stack = [root], [iter(children[root])]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(children[nxt]))
    return None


def _graph(d: AutomationDefinition) -> Iterator[str]:
    cycle = _cycle(d)
    if cycle is not None:
        yield f'node "{cycle[0]}": the graph has a cycle ({" -> ".join(cycle)})'
        return
    start = next(n.id for n in d.nodes if isinstance(n, TriggerNode))
    reached, todo = {start}, [start]
    while todo:
        for e in d.outgoing(todo.pop()):
            if e.target not in reached:
                reached.add(e.target)
                todo.append(e.target)
    for n in d.nodes:
        if n.id not in reached:
            yield f'node "{n.id}": not reachable from the trigger node "{start}"'


def _trigger(d: AutomationDefinition) -> Iterator[str]:
    for c in d.trigger.conditions:
        problem = field_problem(c.field) or value_problem(c.field, c.value)
        if problem is not None:
            yield f"trigger: {problem}"
    transition = d.trigger.state_transition
    if transition is not None:
        for word, status in (("from", transition.from_), ("to", transition.to)):
            if status is not None and status not in TICKET_STATUSES:
                yield (
                    f'trigger: stateTransition {word} "{status}" is not a ticket status '
                    f"({', '.join(TICKET_STATUSES)})"
                )


def _action(node: ActionNode, registry: RegistryLike) -> str | None:
    data = node.data
    definition = registry.get_definition(data.action)
    if definition is None:
        known = ", ".join(registry.list_action_names()) or "none"
        return f'unknown action "{data.action}" (available: {known})'
    found = params_problem(data.parameters)
    if found is not None:
        return f'parameter "{found[0]}": {found[1]}'
    reason_problem = text_problem(data.reason)
    if reason_problem is not None:
        return f"reason: {reason_problem}"
    # A parameter with placeholders is checked by the registry when it is proposed, with
    # the ticket's values; here it only has to exist.
    rendered_later = {k for k, v in data.parameters.items() if has_placeholders(v)}
    fixed = {k: v for k, v in data.parameters.items() if k not in rendered_later}
    unknown = sorted(rendered_later - set(definition.parameters))
    if unknown:
        allowed = ", ".join(definition.parameters) or "none"
        return (
            f"unknown parameter '{unknown[0]}' for action '{data.action}' (parameters: {allowed})"
        )
    reduced = definition.model_copy(
        update={
            "parameters": {
                k: spec for k, spec in definition.parameters.items() if k not in rendered_later
            }
        }
    )
    try:
        validate_action_params(reduced, fixed)
    except ValidationError as exc:
        return str(exc)
    return None


def _delay_minutes(node: DelayNode) -> str | None:
    try:
        delay_seconds(node.data.duration_minutes * 60, "durationMinutes", "durationMinutes")
    except ValidationError as exc:
        return str(exc)
    return None


def _contents(d: AutomationDefinition, registry: RegistryLike) -> Iterator[str]:
    yield from _trigger(d)
    for n in d.nodes:
        problem: str | None = None
        if isinstance(n, ActionNode):
            problem = _action(n, registry)
        elif isinstance(n, ConditionNode):
            problem = field_problem(n.data.field) or value_problem(n.data.field, n.data.value)
        elif isinstance(n, DelayNode):
            problem = _delay_minutes(n)
        if problem is not None:
            yield f'node "{n.id}": {problem}'
    yield from _delays_fit(d)


def _delays_fit(d: AutomationDefinition) -> Iterator[str]:
    """No path may wait as long as the whole execution is allowed to run."""
    timeout = d.settings.timeout_seconds
    waited: dict[str, float] = {}
    for node_id in topological_order(d):
        node = d.node(node_id)
        before = max((waited[e.source] for e in d.incoming(node_id)), default=0.0)
        own = node.data.duration_minutes * 60 if isinstance(node, DelayNode) else 0.0
        waited[node_id] = before + own
        if own and waited[node_id] >= timeout:
            yield (
                f'node "{node_id}": the delays up to here ({waited[node_id] / 60:g} min) '
                f"reach the automation's timeout ({d.settings.timeout})"
            )
            return


def topological_order(d: AutomationDefinition) -> list[str]:
    """Node ids, each after all its predecessors, ties in file order (graph must be acyclic)."""
    return list(d.order)


def problems(d: AutomationDefinition, registry: RegistryLike, source: str) -> Iterator[str]:
    """Every problem found, phase by phase, each as ``SOURCE: WHERE: PROBLEM``."""
    phases: list[Any] = [
        lambda: _structure(d),
        lambda: _edges(d),
        lambda: _graph(d),
        lambda: _contents(d, registry),
    ]
    for phase in phases:
        # Ids and values come from the file: shown as visible text, one line each.
        found = [visible(f"{source}: {line}") for line in phase()]
        yield from found
        if found:
            return


def first_problem(d: AutomationDefinition, registry: RegistryLike, source: str) -> str | None:
    return next(problems(d, registry, source), None)


def check_definition(d: AutomationDefinition, registry: RegistryLike, source: str) -> None:
    """Raise DefinitionError with the first problem; return when the definition is sound."""
    problem = first_problem(d, registry, source)
    if problem is not None:
        raise DefinitionError(problem)


def load_checked(path: str | Path, registry: RegistryLike) -> AutomationDefinition:
    """Read and check a definition file: what ``automations apply`` stores, or one line."""
    d = load_definition(path)
    check_definition(d, registry, str(path))
    return d
