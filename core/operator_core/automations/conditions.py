"""Which tickets an automation reacts to, and which branch a condition node takes.

Matching is the seed's rule: every ``field = value`` pair must hold, no AND/OR language.
Fields are ``severity`` (alias ``priority``), ``service``, ``team``, ``status``,
``assignee`` and ``metadata.KEY``; values compare as exact text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from operator_core.model.ticket_facts import (
    EVENT_TYPES,
    SEVERITIES,
    STATUSES,
    TicketEvent,
    TicketFacts,
    events_for_change,
)

if TYPE_CHECKING:
    from operator_core.automations.definition import AutomationDefinition, ConditionData

# Re-exported: the ticket's facts and events live in model/, below the db layer that
# records them.
__all__ = [
    "EVENT_TYPES",
    "SEVERITIES",
    "STATUSES",
    "TicketEvent",
    "TicketFacts",
    "events_for_change",
]

MATCH_FIELDS = ("severity", "priority", "service", "team", "status", "assignee")
FIELD_ALIASES = {"priority": "severity"}
METADATA_PREFIX = "metadata."

_CLOSED_SETS = {"severity": SEVERITIES, "priority": SEVERITIES, "status": STATUSES}


def field_problem(name: str) -> str | None:
    """Why ``name`` is not a field a condition can test, or None when it is."""
    if name in MATCH_FIELDS:
        return None
    if name.startswith(METADATA_PREFIX) and len(name) > len(METADATA_PREFIX):
        return None
    fields = ", ".join((*MATCH_FIELDS, "metadata.KEY"))
    return f'condition field "{name}" does not exist (fields: {fields})'


def value_problem(name: str, value: str) -> str | None:
    """Why ``name = value`` can never hold (a severity or status no ticket has), or None."""
    allowed = _CLOSED_SETS.get(name)
    if allowed is None or value in allowed:
        return None
    return f'{name} "{value}" never matches (a ticket\'s {name} is {", ".join(allowed)})'


def field_value(ticket: TicketFacts, name: str) -> str | None:
    """The ticket's value of a condition field; None when it has none."""
    if name.startswith(METADATA_PREFIX):
        return ticket.metadata.get(name.removeprefix(METADATA_PREFIX))
    value = getattr(ticket, FIELD_ALIASES.get(name, name))
    return None if value is None else str(value)


def holds(ticket: TicketFacts, name: str, value: str) -> bool:
    """``name = value`` on this ticket; a field the ticket lacks equals only ``""``."""
    return (field_value(ticket, name) or "") == value


def all_hold(pairs: Iterable[tuple[str, str]], ticket: TicketFacts) -> bool:
    return all(holds(ticket, name, value) for name, value in pairs)


def in_scope(definition: AutomationDefinition, ticket: TicketFacts) -> bool:
    scope = definition.scope
    return scope.type == "global" or ticket.team == scope.team


def age_due_at(definition: AutomationDefinition, ticket: TicketFacts) -> datetime | None:
    """When an age trigger fires for this ticket (the runner wakes then), or None if never:
    the trigger is not ``age``, or the ticket is no longer open and unacknowledged."""
    threshold = definition.trigger.age_threshold_minutes
    if definition.trigger.event != "age" or threshold is None:
        return None
    if ticket.status != "open" or ticket.acknowledged_at is not None:
        return None
    if ticket.created_at is None:
        return None
    return ticket.created_at + timedelta(minutes=threshold)


def trigger_matches(
    definition: AutomationDefinition,
    event: TicketEvent,
    ticket: TicketFacts | Mapping[str, Any],
    now: datetime | None = None,
) -> bool:
    """Whether ``event`` on ``ticket`` starts this automation. ``now`` is needed for age
    triggers only. Whether the automation is enabled is the caller's business."""
    facts = TicketFacts.of(ticket)
    trigger = definition.trigger
    event_type = "incident_created" if event.type == "ticket_created" else event.type
    if event_type != trigger.event or not in_scope(definition, facts):
        return False
    if trigger.event == "state_changed" and trigger.state_transition is not None:
        wanted = trigger.state_transition
        if wanted.from_ is not None and wanted.from_ != event.from_status:
            return False
        if wanted.to is not None and wanted.to != event.to_status:
            return False
    if trigger.event == "age":
        due = age_due_at(definition, facts)
        if due is None or now is None or now < due:
            return False
    return all_hold(((c.field, c.value) for c in trigger.conditions), facts)


def evaluate_condition(data: ConditionData, ticket: TicketFacts | Mapping[str, Any]) -> bool:
    """The branch a condition node takes: True for its ``true`` edges."""
    return holds(TicketFacts.of(ticket), data.field, data.value)
