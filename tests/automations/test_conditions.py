"""Trigger matching and condition nodes: every trigger type and condition field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from operator_core.automations.conditions import (
    TicketEvent,
    TicketFacts,
    age_due_at,
    evaluate_condition,
    events_for_change,
    field_problem,
    trigger_matches,
)
from operator_core.automations.definition import ConditionData, parse_definition

from tests.automations.helpers import linear

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TICKET = TicketFacts(
    id=7,
    title="api latency",
    severity="high",
    status="open",
    service="api",
    team="payments",
    assignee="ana",
    metadata={"region": "eu-1"},
    created_at=T0,
)


def automation(trigger: dict[str, Any], **top: Any) -> Any:
    return parse_definition(linear(trigger=trigger, **top))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("severity", "high"),
        ("priority", "high"),
        ("service", "api"),
        ("team", "payments"),
        ("status", "open"),
        ("assignee", "ana"),
        ("metadata.region", "eu-1"),
    ],
)
def test_each_condition_field_matches_and_mismatches(field: str, value: str) -> None:
    match = automation(
        {"type": "incident_created", "conditions": [{"field": field, "value": value}]}
    )
    miss = automation({"type": "incident_created", "conditions": [{"field": field, "value": "x"}]})
    event = TicketEvent("incident_created")
    assert trigger_matches(match, event, TICKET)
    assert not trigger_matches(miss, event, TICKET)


def test_all_conditions_must_hold() -> None:
    conds = [{"field": "service", "value": "api"}, {"field": "severity", "value": "low"}]
    d = automation({"type": "incident_created", "conditions": conds})
    assert not trigger_matches(d, TicketEvent("incident_created"), TICKET)


def test_ticket_created_event_and_trigger_are_aliases() -> None:
    d = automation({"type": "ticket_created"})
    assert trigger_matches(d, TicketEvent("incident_created"), TICKET)
    assert trigger_matches(d, TicketEvent("ticket_created"), TICKET)
    assert not trigger_matches(d, TicketEvent("escalation"), TICKET)


def test_state_changed_with_and_without_a_transition() -> None:
    any_change = automation({"type": "state_changed"})
    to_ack = automation(
        {"type": "state_changed", "stateTransition": {"from": "open", "to": "acknowledged"}}
    )
    ack = TicketEvent("state_changed", "open", "acknowledged")
    resolve = TicketEvent("state_changed", "acknowledged", "resolved")
    assert trigger_matches(any_change, ack, TICKET)
    assert trigger_matches(any_change, resolve, TICKET)
    assert trigger_matches(to_ack, ack, TICKET)
    assert not trigger_matches(to_ack, resolve, TICKET)


def test_escalation_and_manual_match_their_own_events() -> None:
    for kind in ("escalation", "manual"):
        d = automation({"type": kind})
        assert trigger_matches(d, TicketEvent(kind), TICKET)
        assert not trigger_matches(d, TicketEvent("incident_created"), TICKET)


def test_age_trigger_fires_once_the_ticket_is_old_and_unacknowledged() -> None:
    d = automation({"type": "age", "ageThresholdMinutes": 30})
    event = TicketEvent("age")
    assert age_due_at(d, TICKET) == T0 + timedelta(minutes=30)
    assert not trigger_matches(d, event, TICKET, now=T0 + timedelta(minutes=29))
    assert trigger_matches(d, event, TICKET, now=T0 + timedelta(minutes=30))
    acked = TicketFacts(**{**TICKET.__dict__, "acknowledged_at": T0})
    resolved = TicketFacts(**{**TICKET.__dict__, "status": "resolved"})
    for ticket in (acked, resolved):
        assert age_due_at(d, ticket) is None
        assert not trigger_matches(d, event, ticket, now=T0 + timedelta(days=1))


def test_team_scope_only_matches_that_teams_tickets() -> None:
    trigger = {"type": "incident_created"}
    mine = automation(trigger, scope={"type": "team", "team": "payments"})
    theirs = automation(trigger, scope={"type": "team", "team": "search"})
    event = TicketEvent("incident_created")
    assert trigger_matches(mine, event, TICKET)
    assert not trigger_matches(theirs, event, TICKET)


def test_a_plain_mapping_is_a_ticket_too() -> None:
    d = automation(
        {"type": "incident_created", "conditions": [{"field": "service", "value": "api"}]}
    )
    assert trigger_matches(d, TicketEvent("incident_created"), {"service": "api", "other": 1})


def test_condition_node_takes_either_branch() -> None:
    data = ConditionData(field="status", value="open")
    assert evaluate_condition(data, TICKET) is True
    assert evaluate_condition(data, {"status": "resolved"}) is False


def test_missing_field_equals_only_empty_text() -> None:
    unassigned = TicketFacts(assignee=None)
    assert evaluate_condition(ConditionData(field="assignee", value=""), unassigned)
    assert not evaluate_condition(ConditionData(field="metadata.zone", value="a"), unassigned)


def test_unknown_fields_are_named() -> None:
    assert field_problem("metadata.zone") is None
    problem = field_problem("sevrity")
    assert problem is not None and problem.startswith('condition field "sevrity" does not exist')
    assert field_problem("metadata.") is not None


def test_events_for_a_ticket_change() -> None:
    acked = TicketFacts(**{**TICKET.__dict__, "status": "acknowledged"})
    critical = TicketFacts(**{**TICKET.__dict__, "severity": "critical"})
    lowered = TicketFacts(**{**TICKET.__dict__, "severity": "low"})
    assert events_for_change(None, TICKET) == [TicketEvent("incident_created")]
    assert events_for_change(TICKET, acked) == [
        TicketEvent("state_changed", "open", "acknowledged")
    ]
    assert events_for_change(TICKET, critical) == [TicketEvent("escalation")]
    assert events_for_change(TICKET, lowered) == []
    assert events_for_change(TICKET, TICKET) == []
