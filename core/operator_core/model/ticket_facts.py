"""A ticket's facts as automations read them, and the trigger events a change makes.

Below ``db/`` (which records the events in the commit that changes the ticket) and
``automations/`` (which matches them against triggers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The values a ticket's severity and status take (model.types.Ticket and issue 22's
# lifecycle): a condition on another value could never match, so validation refuses it.
SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "acknowledged", "resolved")

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
