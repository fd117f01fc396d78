"""Every bad definition is refused with one line naming the file and the node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.registry import ActionRegistry
from operator_core.automations.definition import DefinitionError, parse_definition
from operator_core.automations.validate import first_problem, load_checked, topological_order
from operator_core.subjects.demo import DemoSubject

from tests.automations.helpers import (
    FIXTURES,
    action,
    condition,
    delay,
    linear,
    seed_dict,
    write,
)
from tests.support.subjects import TestSubject

REGISTRY = ActionRegistry.from_subject(TestSubject())
DEMO = ActionRegistry.from_subject(DemoSubject(seed=1))


def problem(data: dict[str, Any], registry: ActionRegistry = REGISTRY) -> str | None:
    return first_problem(parse_definition(data), registry, "auto.json")


def branches(
    cond: dict[str, Any], yes: dict[str, Any], no: dict[str, Any], **top: Any
) -> dict[str, Any]:
    """trigger -> cond -> (true: yes, false: no)."""
    data = linear(cond, yes, no, **top)
    data["edges"] = [
        {"id": "e0", "source": "t", "target": cond["id"]},
        {"id": "e1", "source": cond["id"], "target": yes["id"], "sourceHandle": "true"},
        {"id": "e2", "source": cond["id"], "target": no["id"], "sourceHandle": "false"},
    ]
    return data


def test_seed_definition_validates_against_the_demo_subject() -> None:
    for name in ("seed_004.json", "seed_004.toml"):
        d = load_checked(FIXTURES / name, DEMO)
        assert d.name == "api-high-severity"


def test_a_sound_definition_has_no_problem() -> None:
    data = branches(
        condition("c", "status", "open"),
        action("yes", "ok", parameters={"seconds": "1.5"}),
        action("no", "flaky", parameters={"times": "{ticket.metadata.times}"}),
    )
    assert problem(data) is None


BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown action",
        linear(action("restart", "restart_svc")),
        'auto.json: node "restart": unknown action "restart_svc" (available: fail, fail_hard, '
        "flaky, guarded, ok, slow)",
    ),
    (
        "bad parameter value",
        linear(action("f", "flaky", parameters={"times": "many"})),
        "auto.json: node \"f\": parameter 'times' must be an integer, got 'many'",
    ),
    (
        "unknown parameter",
        linear(action("f", "ok", parameters={"secs": 1})),
        "auto.json: node \"f\": unknown parameter 'secs' for action 'ok' (parameters: seconds)",
    ),
    (
        "unknown parameter holding a placeholder",
        linear(action("f", "ok", parameters={"secs": "{ticket.id}"})),
        "auto.json: node \"f\": unknown parameter 'secs' for action 'ok' (parameters: seconds)",
    ),
    (
        "missing required parameter",
        linear(action("f", "flaky")),
        "auto.json: node \"f\": missing required parameter 'times' (int) for action 'flaky'",
    ),
    (
        "unknown placeholder",
        linear(action("f", "flaky", parameters={"times": "{ticket.tmies}"})),
        'auto.json: node "f": parameter "times": unknown placeholder {ticket.tmies}',
    ),
    (
        "unknown workflow placeholder",
        linear(action("f", "flaky", parameters={"times": "{workflow.owner}"})),
        'auto.json: node "f": parameter "times": unknown placeholder {workflow.owner}',
    ),
    (
        "unknown placeholder in the reason",
        linear(action("f", "ok", reason="for {ticket.nope}")),
        'auto.json: node "f": reason: unknown placeholder {ticket.nope}',
    ),
    (
        "trigger field",
        linear(trigger={"type": "incident_created", "conditions": [{"field": "x", "value": "1"}]}),
        'auto.json: trigger: condition field "x" does not exist',
    ),
    (
        "condition node field",
        branches(condition("c", "owner", "ana"), action("a", "ok"), action("b", "ok")),
        'auto.json: node "c": condition field "owner" does not exist',
    ),
    (
        "trigger severity no ticket has",
        linear(
            trigger={
                "type": "incident_created",
                "conditions": [{"field": "priority", "value": "P1"}],
            }
        ),
        'auto.json: trigger: priority "P1" never matches (a ticket\'s priority is low, medium, '
        "high, critical)",
    ),
    (
        "condition node status no ticket has",
        branches(condition("c", "status", "closed"), action("a", "ok"), action("b", "ok")),
        'auto.json: node "c": status "closed" never matches',
    ),
    (
        "state transition status",
        linear(trigger={"type": "state_changed", "stateTransition": {"to": "closed"}}),
        'auto.json: trigger: stateTransition to "closed" is not a ticket status',
    ),
    (
        "negative delay",
        linear(delay("wait", -1)),
        'auto.json: node "wait": durationMinutes cannot be negative',
    ),
    (
        "absurd delay",
        linear(delay("wait", 60 * 24 * 365 * 20)),
        'auto.json: node "wait": durationMinutes cannot be more than 3653 days',
    ),
    (
        "delay as long as the timeout",
        linear(delay("a", 10), delay("b", 5), settings={"timeout": "15min"}),
        'auto.json: node "b": the delays up to here (15 min) reach the automation\'s timeout '
        "(15min)",
    ),
    (
        "no trigger",
        {**linear(action("a", "ok")), "nodes": [action("a", "ok")], "edges": []},
        "auto.json: definition: no trigger node",
    ),
    (
        "two triggers",
        linear({"id": "t2", "type": "trigger", "data": {}}),
        'auto.json: node "t2": a second trigger node (only one is allowed)',
    ),
    (
        "duplicate node id",
        linear(action("a", "ok"), action("a", "ok")),
        'auto.json: node "a": the id is used by two nodes',
    ),
    (
        "edge to a missing node",
        {**linear(action("a", "ok")), "edges": [{"id": "e9", "source": "t", "target": "b"}]},
        'auto.json: edge "e9": target "b" is not a node',
    ),
    (
        "edge into the trigger",
        {
            **linear(action("a", "ok")),
            "edges": [
                {"id": "e1", "source": "t", "target": "a"},
                {"id": "e2", "source": "a", "target": "t"},
            ],
        },
        'auto.json: edge "e2": leads into the trigger node "t"',
    ),
    (
        "cycle",
        {
            **linear(action("a", "ok"), action("b", "ok")),
            "edges": [
                {"id": "e1", "source": "t", "target": "a"},
                {"id": "e2", "source": "a", "target": "b"},
                {"id": "e3", "source": "b", "target": "a"},
            ],
        },
        'auto.json: node "a": the graph has a cycle (a -> b -> a)',
    ),
    (
        "unreachable node",
        {**linear(action("a", "ok")), "edges": []},
        'auto.json: node "a": not reachable from the trigger node "t"',
    ),
    (
        "condition without a false branch",
        {
            **linear(condition("c", "status", "open"), action("a", "ok")),
            "edges": [
                {"id": "e1", "source": "t", "target": "c"},
                {"id": "e2", "source": "c", "target": "a", "sourceHandle": "true"},
            ],
        },
        'auto.json: node "c": a condition needs both a "true" and a "false" branch (no "false"',
    ),
    (
        "condition edge without a handle",
        linear(condition("c", "status", "open"), action("a", "ok")),
        'auto.json: edge "e1": leaves condition node "c" without sourceHandle',
    ),
    (
        "handle on an action edge",
        {
            **linear(action("a", "ok"), action("b", "ok")),
            "edges": [
                {"id": "e1", "source": "t", "target": "a"},
                {"id": "e2", "source": "a", "target": "b", "sourceHandle": "true"},
            ],
        },
        'auto.json: edge "e2": sourceHandle is only for edges leaving a condition node',
    ),
]


@pytest.mark.parametrize(("data", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_definition_is_one_line_naming_file_and_node(
    data: dict[str, Any], expected: str
) -> None:
    found = problem(data)
    assert found is not None
    assert found.startswith(expected), found
    assert "\n" not in found


def test_load_checked_names_the_file_and_raises(tmp_path: Path) -> None:
    path = write(tmp_path, linear(action("restart", "restart_svc")))
    with pytest.raises(DefinitionError) as err:
        load_checked(path, REGISTRY)
    assert str(err.value).startswith(f'{path}: node "restart": unknown action "restart_svc"')


def test_seed_with_an_unknown_demo_action_is_refused() -> None:
    data = seed_dict()
    data["nodes"][4]["data"]["actionType"] = "restart_svc"
    found = problem(data, DEMO)
    assert found is not None
    assert found.startswith('auto.json: node "restart": unknown action "restart_svc"')


def test_topological_order_puts_each_node_after_its_parents() -> None:
    d = parse_definition(seed_dict())
    assert topological_order(d) == ["trigger-1", "check", "wait", "still-open", "restart", "done"]


def test_text_from_the_file_is_shown_visibly() -> None:
    found = problem(linear(action("re\nstart\x1b[2J", "nope")))
    assert found is not None
    assert found.startswith('auto.json: node "re\\nstart\\x1b[2J": unknown action "nope"')
