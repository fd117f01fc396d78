"""Opening and changing tickets: open -> acknowledged -> resolved, escalation, edits.

Every change is one transaction with its audit event and the trigger events automations
consume (see db/tickets.py); a refused change writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from operator_core.actions import limits
from operator_core.actions.executor_base import ExecutorBase
from operator_core.clock import to_db
from operator_core.db import tickets as ticket_db
from operator_core.db.tickets import TicketChange, TicketEventRow, TicketNotFoundError
from operator_core.errors import InvalidTransitionError, ValidationError
from operator_core.identity import actor_text
from operator_core.model.types import TICKET_SEVERITIES, TICKET_STATUSES, Ticket

__all__ = ["TicketNotFoundError", "Ticketing"]

META_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_META = 50
MAX_FIELD_CHARS = 200
MAX_TITLE_CHARS = 500
# The fields ``update_ticket`` may set; status moves only through ack and resolve.
EDITABLE = ("title", "summary", "severity", "service", "team", "assignee")


def check_severity(value: object, field: str = "severity") -> str:
    if value not in TICKET_SEVERITIES:
        raise ValidationError(
            f"severity must be {', '.join(TICKET_SEVERITIES)}, not {value!r}", field
        )
    assert isinstance(value, str)
    return value


def check_status(value: object) -> str:
    if value not in TICKET_STATUSES:
        raise ValidationError(f"status must be {', '.join(TICKET_STATUSES)}, not {value!r}")
    assert isinstance(value, str)
    return value


def check_title(value: object) -> str:
    text = limits.text(value, "the title", "title")
    if not text.strip():
        raise ValidationError("a ticket needs a title", "title")
    if len(text) > MAX_TITLE_CHARS:
        raise ValidationError(f"a title is at most {MAX_TITLE_CHARS} characters", "title")
    return text


def check_name(value: object, field: str) -> str | None:
    """A service, team or assignee: one short line; empty clears it."""
    text = limits.text(value, field, field).strip()
    if len(text) > MAX_FIELD_CHARS or "\n" in text:
        raise ValidationError(f"{field} is one line of at most {MAX_FIELD_CHARS} characters")
    return text or None


def check_metadata(pairs: Mapping[str, object]) -> dict[str, str]:
    """String keys (letters, digits, ``_.-``) and string values, at most MAX_META pairs."""
    if len(pairs) > MAX_META:
        raise ValidationError(f"a ticket has at most {MAX_META} metadata keys", "metadata")
    out: dict[str, str] = {}
    for key, value in pairs.items():
        if not isinstance(key, str) or not META_KEY.fullmatch(key):
            raise ValidationError(
                f"metadata key {key!r} must be letters, digits, '_', '.' or '-' "
                "(at most 64, starting with a letter or digit)",
                "metadata",
            )
        if not isinstance(value, str):
            raise ValidationError(f"metadata {key} must be text, got {value!r}", "metadata")
        out[key] = limits.text(value, f"metadata {key}", "metadata")
    return out


class Ticketing(ExecutorBase):
    """Tickets' lifecycle, as the CLI, the dashboard and agents change it."""

    async def open_ticket(
        self,
        title: str,
        summary: str = "",
        severity: str = "medium",
        actor: str = "agent",
        *,
        service: str | None = None,
        team: str | None = None,
        assignee: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Ticket:
        """Open a ticket; its ``incident_created`` event is recorded in the same commit."""
        ticket = Ticket(
            title=check_title(title),
            summary=limits.text(summary, "the summary", "summary"),
            severity=check_severity(severity),
            service=check_name(service or "", "service"),
            team=check_name(team or "", "team"),
            assignee=check_name(assignee or "", "assignee"),
            metadata=check_metadata(metadata or {}),
        )
        return await self.db.write(
            ticket_db.insert, ticket, actor_text(actor, self.identity), self.db.clock.now_text()
        )

    async def require_ticket(self, ticket_id: int) -> Ticket:
        return await self.db.read(ticket_db.require, ticket_id)

    async def list_tickets(self, status: str | None = None, limit: int = 50) -> list[Ticket]:
        if status is not None:
            check_status(status)
        return await self.db.read(ticket_db.list_tickets, status, limit)

    async def ticket_events(self, ticket_id: int) -> list[TicketEventRow]:
        await self.require_ticket(ticket_id)
        return await self.db.read(ticket_db.ticket_events, ticket_id)

    async def _change(
        self, ticket_id: int, apply: Any, event_type: str, actor: str, now: datetime | None = None
    ) -> TicketChange:
        return await self.db.write(
            ticket_db.change,
            ticket_id,
            apply,
            event_type,
            actor_text(actor, self.identity),
            to_db(now or self.db.clock.now()),
        )

    async def acknowledge_ticket(self, ticket_id: int, actor: str) -> TicketChange:
        """open -> acknowledged."""
        now = self.db.clock.now()

        def apply(t: Ticket) -> dict[str, Any]:
            if t.status != "open":
                raise InvalidTransitionError(
                    f"ticket {ticket_id} is {t.status}; only an open ticket can be acknowledged"
                )
            return {"status": "acknowledged", "acknowledged_at": now}

        return await self._change(ticket_id, apply, "ticket_acknowledged", actor, now)

    async def resolve_ticket(self, ticket_id: int, actor: str) -> TicketChange:
        """open or acknowledged -> resolved."""
        now = self.db.clock.now()

        def apply(t: Ticket) -> dict[str, Any]:
            if t.status == "resolved":
                raise InvalidTransitionError(f"ticket {ticket_id} is already resolved")
            return {"status": "resolved", "resolved_at": now}

        return await self._change(ticket_id, apply, "ticket_resolved", actor, now)

    async def escalate_ticket(
        self, ticket_id: int, actor: str, severity: str | None = None
    ) -> TicketChange:
        """Raise the severity (by default one step); a lower or equal one is refused."""
        wanted = None if severity is None else check_severity(severity)

        def apply(t: Ticket) -> dict[str, Any]:
            if t.status == "resolved":
                raise InvalidTransitionError(f"ticket {ticket_id} is resolved; nothing to escalate")
            rank = TICKET_SEVERITIES.index(t.severity) if t.severity in TICKET_SEVERITIES else -1
            if wanted is None:
                if rank + 1 >= len(TICKET_SEVERITIES):
                    raise InvalidTransitionError(f"ticket {ticket_id} is already critical")
                return {"severity": TICKET_SEVERITIES[rank + 1]}
            if TICKET_SEVERITIES.index(wanted) <= rank:
                raise InvalidTransitionError(
                    f"ticket {ticket_id} is {t.severity}; escalating means a higher severity "
                    f"than that, not {wanted}"
                )
            return {"severity": wanted}

        return await self._change(ticket_id, apply, "ticket_escalated", actor)

    async def update_ticket(
        self,
        ticket_id: int,
        actor: str,
        fields: Mapping[str, str] | None = None,
        set_metadata: Mapping[str, str] | None = None,
        unset_metadata: tuple[str, ...] = (),
    ) -> TicketChange:
        """Edit fields (an empty service, team or assignee clears it) and metadata keys.
        Raising the severity here records an escalation, as ``escalate_ticket`` does."""
        fields = dict(fields or {})
        unknown = sorted(set(fields) - set(EDITABLE))
        if unknown:
            raise ValidationError(
                f"cannot update {unknown[0]!r} (fields: {', '.join(EDITABLE)}; "
                "use ack and resolve for the status)"
            )
        if not fields and not set_metadata and not unset_metadata:
            raise ValidationError("nothing to update: give at least one field")
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "title":
                values[key] = check_title(value)
            elif key == "summary":
                values[key] = limits.text(value, "the summary", "summary")
            elif key == "severity":
                values[key] = check_severity(value)
            else:
                values[key] = check_name(value, key)
        added = check_metadata(set_metadata or {})
        clash = sorted(set(added) & set(unset_metadata))
        if clash:
            raise ValidationError(f"metadata {clash[0]} is both set and unset")

        def apply(t: Ticket) -> dict[str, Any]:
            metadata = {k: v for k, v in t.metadata.items() if k not in unset_metadata}
            metadata |= added
            return values | {"metadata": check_metadata(metadata)}

        return await self._change(ticket_id, apply, "ticket_updated", actor)
