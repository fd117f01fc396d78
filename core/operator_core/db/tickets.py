"""Tickets and their lifecycle: each change one write transaction that also appends its audit
event and the trigger events automations consume.

A change reads the ticket, applies a pure function to it and writes the result, all under the
write lock (BEGIN IMMEDIATE), so two processes changing one ticket are serialised and the
trigger events describe exactly the change that was committed. The events
(``automations.conditions.events_for_change``) wait in ``ticket_events`` until a runner
claims them (``claim_events``, a lease like an action's claim) and marks them consumed in the
transaction that starts the executions (``consume_event``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from operator_core.clock import from_db, to_db
from operator_core.db import audit as audit_log
from operator_core.db import executions
from operator_core.db.dialect import insert_id
from operator_core.db.encode import dumps
from operator_core.db.records import AuditEntry
from operator_core.db.rows import TICKET_SQL, row_to_ticket
from operator_core.errors import OperatorError
from operator_core.model.ticket_facts import TicketFacts, events_for_change

if TYPE_CHECKING:
    from operator_core.model.types import Ticket


class TicketNotFoundError(OperatorError, LookupError):
    """No ticket has this id."""


# A new ticket, open.
INSERT_TICKET_SQL = """
INSERT INTO tickets (title, summary, severity, status, service, team, assignee, metadata,
    created_at, updated_at)
VALUES (:title, :summary, :severity, 'open', :service, :team, :assignee, :metadata, :now, :now)
"""

# Every field a change may set. Guarded by the status read in the same transaction, so a
# change computed from a stale read cannot land (primary key).
UPDATE_TICKET_SQL = """
UPDATE tickets SET title = :title, summary = :summary, severity = :severity, status = :status,
    service = :service, team = :team, assignee = :assignee, metadata = :metadata,
    acknowledged_at = :acknowledged_at, resolved_at = :resolved_at, updated_at = :now
WHERE id = :id AND status = :expected_status
"""

# Newest tickets first (the primary key, backwards).
LIST_TICKETS_SQL = "SELECT * FROM tickets ORDER BY id DESC LIMIT ?"

# Newest tickets in one status first (idx_tickets_status, whose entries end in the rowid).
LIST_TICKETS_BY_STATUS_SQL = "SELECT * FROM tickets WHERE status = ? ORDER BY id DESC LIMIT ?"

# A trigger event, recorded in the commit that changed the ticket.
INSERT_EVENT_SQL = """
INSERT INTO ticket_events (ticket_id, event_type, from_status, to_status, facts, actor,
    created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""

# A ticket's trigger events in order (idx_ticket_events_ticket).
TICKET_EVENTS_SQL = "SELECT * FROM ticket_events WHERE ticket_id = ? ORDER BY id"

# Claim the oldest events nobody has consumed and nobody holds (or whose holder's lease ran
# out): idx_ticket_events_pending, which holds only unconsumed events.
CLAIM_EVENTS_SQL = """
UPDATE ticket_events SET claimed_by = :runner, claim_expires_at = :until
WHERE id IN (
    SELECT id FROM ticket_events
    WHERE consumed_at IS NULL AND (claimed_by IS NULL OR claim_expires_at <= :now)
    ORDER BY id LIMIT :limit)
RETURNING *
"""

# Mark a claimed event consumed, only by the runner that still holds it (primary key).
CONSUME_EVENT_SQL = """
UPDATE ticket_events SET consumed_at = :now
WHERE id = :id AND claimed_by = :runner AND consumed_at IS NULL
"""


@dataclass(frozen=True)
class TicketEventRow:
    """A stored trigger event; ``facts`` is the ticket as the change left it."""

    id: int
    ticket_id: int
    event_type: str
    from_status: str | None
    to_status: str | None
    facts: dict[str, Any]
    actor: str
    created_at: datetime | None
    claimed_by: str | None
    claim_expires_at: datetime | None
    consumed_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ticket_id": self.ticket_id,
            "event_type": self.event_type,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "actor": self.actor,
            "created_at": to_db(self.created_at),
            "consumed_at": to_db(self.consumed_at),
        }


def _event(row: sqlite3.Row) -> TicketEventRow:
    return TicketEventRow(
        id=row["id"],
        ticket_id=row["ticket_id"],
        event_type=row["event_type"],
        from_status=row["from_status"],
        to_status=row["to_status"],
        facts=json.loads(row["facts"]),
        actor=row["actor"],
        created_at=from_db(row["created_at"]),
        claimed_by=row["claimed_by"],
        claim_expires_at=from_db(row["claim_expires_at"]),
        consumed_at=from_db(row["consumed_at"]),
    )


def facts(ticket: Ticket) -> TicketFacts:
    """What automations may read of a ticket."""
    return TicketFacts(
        id=ticket.id,
        title=ticket.title,
        summary=ticket.summary,
        severity=ticket.severity,
        status=ticket.status,
        service=ticket.service,
        team=ticket.team,
        assignee=ticket.assignee,
        metadata=dict(ticket.metadata),
        created_at=ticket.created_at,
        acknowledged_at=ticket.acknowledged_at,
    )


def _record_events(
    conn: sqlite3.Connection, before: Ticket | None, after: Ticket, actor: str, now: str
) -> list[str]:
    events = events_for_change(None if before is None else facts(before), facts(after))
    snapshot = dumps(after.model_dump(mode="json"))
    conn.executemany(
        INSERT_EVENT_SQL,
        [(after.id, e.type, e.from_status, e.to_status, snapshot, actor, now) for e in events],
    )
    return [e.type for e in events]


def require(conn: sqlite3.Connection, ticket_id: int) -> Ticket:
    row = conn.execute(TICKET_SQL, (ticket_id,)).fetchone()
    if row is None:
        raise TicketNotFoundError(f"no ticket with id {ticket_id}")
    return row_to_ticket(row)


def insert(conn: sqlite3.Connection, ticket: Ticket, actor: str, now: str) -> Ticket:
    """Open ``ticket`` (its status and times are set here): the row, its audit event and its
    ``incident_created`` trigger event, in the caller's transaction."""
    ticket_id = insert_id(
        conn,
        INSERT_TICKET_SQL,
        {
            "title": ticket.title,
            "summary": ticket.summary,
            "severity": ticket.severity,
            "service": ticket.service,
            "team": ticket.team,
            "assignee": ticket.assignee,
            "metadata": dumps(ticket.metadata),
            "now": now,
        },
    )
    opened = require(conn, ticket_id)
    _record_events(conn, None, opened, actor, now)
    audit_log.append(
        conn,
        AuditEntry(
            "ticket_opened",
            {"ticket_id": opened.id, "title": opened.title, "severity": opened.severity},
            actor,
        ),
        now,
    )
    return opened


# What changed, field by field: (before, after) as stored text.
Changes = dict[str, tuple[Any, Any]]
_FIELDS = ("title", "summary", "severity", "status", "service", "team", "assignee", "metadata")


def _diff(before: Ticket, after: Ticket) -> Changes:
    return {
        f: (getattr(before, f), getattr(after, f))
        for f in _FIELDS
        if getattr(before, f) != getattr(after, f)
    }


@dataclass(frozen=True)
class TicketChange:
    """A committed change: the ticket after it, what changed, the trigger events recorded."""

    ticket: Ticket
    changes: Changes
    events: list[str]


def change(
    conn: sqlite3.Connection,
    ticket_id: int,
    apply: Callable[[Ticket], dict[str, Any]],
    event_type: str,
    actor: str,
    now: str,
) -> TicketChange:
    """Read the ticket, ``apply`` (which returns the fields to set, or raises to refuse), and
    write it with its audit and trigger events. Nothing is written when nothing changes."""
    before = require(conn, ticket_id)
    after = before.model_copy(update=apply(before))
    changes = _diff(before, after)
    if not changes:
        return TicketChange(before, {}, [])
    params = {f: getattr(after, f) for f in _FIELDS}
    params["metadata"] = dumps(after.metadata)
    params |= {
        "acknowledged_at": to_db(after.acknowledged_at),
        "resolved_at": to_db(after.resolved_at),
        "now": now,
        "id": ticket_id,
        "expected_status": before.status,
    }
    if conn.execute(UPDATE_TICKET_SQL, params).rowcount != 1:
        raise TicketNotFoundError(f"ticket {ticket_id} changed meanwhile; try again")
    written = require(conn, ticket_id)
    events = _record_events(conn, before, written, actor, now)
    if written.status == "resolved" and before.status != "resolved":
        # A resolved ticket needs no more automation: its executions end with the change.
        executions.cancel_for_ticket(conn, ticket_id, "ticket resolved", actor, now)
    audit_log.append(
        conn,
        AuditEntry(
            event_type,
            {"ticket_id": ticket_id, "changes": {k: list(v) for k, v in changes.items()}},
            actor,
        ),
        now,
    )
    return TicketChange(written, changes, events)


def list_tickets(conn: sqlite3.Connection, status: str | None, limit: int) -> list[Ticket]:
    if status is None:
        rows = conn.execute(LIST_TICKETS_SQL, (limit,)).fetchall()
    else:
        rows = conn.execute(LIST_TICKETS_BY_STATUS_SQL, (status, limit)).fetchall()
    return [row_to_ticket(r) for r in rows]


def ticket_events(conn: sqlite3.Connection, ticket_id: int) -> list[TicketEventRow]:
    return [_event(r) for r in conn.execute(TICKET_EVENTS_SQL, (ticket_id,))]


def claim_events(
    conn: sqlite3.Connection, runner: str, now: str, until: str, limit: int = 100
) -> list[TicketEventRow]:
    """Claim up to ``limit`` unconsumed events for ``runner`` until ``until``, oldest first."""
    rows = conn.execute(
        CLAIM_EVENTS_SQL, {"runner": runner, "until": until, "now": now, "limit": limit}
    ).fetchall()
    return sorted((_event(r) for r in rows), key=lambda e: e.id)


def consume_event(conn: sqlite3.Connection, event_id: int, runner: str, now: str) -> bool:
    """Mark an event consumed; False if ``runner`` no longer holds it (its lease ran out and
    another runner took it), and then the caller's transaction must start nothing."""
    done = conn.execute(CONSUME_EVENT_SQL, {"now": now, "id": event_id, "runner": runner})
    return done.rowcount == 1
