"""The readable tree of a frozen definition, with each node's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from operator_core.automations.conditions import TicketFacts
from operator_core.automations.definition import parse_definition
from operator_core.automations.placeholders import WorkflowFacts
from operator_core.automations.tree import render_tree
from operator_core.automations.walker import (
    ActionFinished,
    ActionProposed,
    ExecutionState,
    Start,
    Tick,
    advance,
)

from tests.automations.helpers import action, linear, seed_dict

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_definition_alone() -> None:
    assert render_tree(parse_definition(seed_dict())) == [
        "trigger-1  trigger",
        '└─ check  action check_health "Check cluster health"',
        "   └─ wait  wait 5 min",
        "      └─ still-open  if status = open",
        '         ├─ [true] restart  action restart_store "Restart the store"',
        '         └─ [false] done  action check_health "Confirm health"',
    ]


def test_with_an_executions_state() -> None:
    d = parse_definition(seed_dict())
    ticket = TicketFacts(status="open", metadata={"store": "s2"})
    run = WorkflowFacts("api", 1, 5)
    state = ExecutionState()
    for event, minutes in [
        (Start(), 0),
        (ActionProposed("check", 11), 0),
        (ActionFinished("check", ok=True), 1),
        (Tick(), 6),
        (ActionProposed("restart", 12), 6),
    ]:
        now = T0 + timedelta(minutes=minutes)
        state = advance(d, state, event, now=now, ticket=ticket, workflow=run).state
    lines = render_tree(d, state)
    assert lines[1].endswith("completed · proposal #11")
    assert lines[3].endswith("if status = open  completed · took true")
    assert lines[4].endswith("running · proposal #12")
    assert lines[5].endswith("skipped")


def test_waiting_delay_and_unreached_nodes() -> None:
    d = parse_definition(
        linear({"id": "w", "type": "delay", "data": {"durationMinutes": 5}}, action("a", "ok"))
    )
    state = advance(
        d,
        ExecutionState(),
        Start(),
        now=T0,
        ticket=TicketFacts(),
        workflow=WorkflowFacts("x", 1, 1),
    ).state
    assert render_tree(d, state)[1:] == [
        "└─ w  wait 5 min  waiting until 2026-01-01 12:05:00Z",
        "   └─ a  action ok  not reached",
    ]


def test_a_join_is_drawn_once() -> None:
    data = linear(action("a", "ok"), action("b", "ok"), action("j", "ok"))
    data["edges"] = [
        {"id": "e1", "source": "t", "target": "a"},
        {"id": "e2", "source": "t", "target": "b"},
        {"id": "e3", "source": "a", "target": "j"},
        {"id": "e4", "source": "b", "target": "j"},
    ]
    assert render_tree(parse_definition(data)) == [
        "t  trigger",
        "├─ a  action ok",
        "│  └─ j  action ok",
        "└─ b  action ok",
        "   └─ j  (see above)",
    ]
