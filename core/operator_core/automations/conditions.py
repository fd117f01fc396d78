"""Which tickets an automation reacts to, and which branch a condition node takes.

Matching is the seed's rule: every ``field = value`` pair must hold, no AND/OR language.
Fields are ``severity`` (alias ``priority``), ``service``, ``team``, ``status``,
``assignee`` and ``metadata.KEY``; values compare as exact text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from operator_core.automations.definition import AutomationDefinition, ConditionData

MATCH_FIELDS = ("severity", "priority", "service", "team", "status", "assignee")
FIELD_ALIASES = {"priority": "severity"}
METADATA_PREFIX = "metadata."

# The values a ticket's severity and status take (model.types.Ticket and issue 22's
# lifecycle): a condition on another value could never match, so validation refuses it.
SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "acknowledged", "resolved")
_CLOSED_SETS = {"severity": SEVERITIES, "priority": SEVERITIES, "status": STATUSES}

# Ticket events a trigger can name (the seed's incident_created is the ticket's creation).
EVENT_TYPES = ("incident_created", "state_changed", "escalation", "manual", "age")


@dataclass(frozen=True)
class TicketFacts:
    """What automations may read of a ticket: a snapshot taken when an event is handled."""

    id: int | None = None
    title: str = ""
    summary: str = ""
    severity: str = "medium"
    status: str = "open"
    service: str | None = None
    team: str | None = None
    assignee: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    acknowledged_at: datetime | None = None

    @classmethod
    def of(cls, ticket: TicketFacts | Mapping[str, Any]) -> TicketFacts:
        """Facts from themselves or from a plain mapping with the same keys."""
        if isinstance(ticket, TicketFacts):
            return ticket
        known = {k: v for k, v in ticket.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class TicketEvent:
    """Something that happened to a ticket; ``from_status``/``to_status`` for state_changed."""

    type: str
    from_status: str | None = None
    to_status: str | None = None


def events_for_change(before: TicketFacts | None, after: TicketFacts) -> list[TicketEvent]:
    """The trigger events one change of a ticket makes: created, status changed, and
    escalated (severity raised). Age events come from time passing, manual ones from a
    person, so neither is made here."""
    if before is None:
        return [TicketEvent("incident_created")]
    events: list[TicketEvent] = []
    if before.status != after.status:
        events.append(TicketEvent("state_changed", before.status, after.status))
    if _rank(after.severity) > _rank(before.severity):
        events.append(TicketEvent("escalation"))
    return events


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


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
