"""Tickets' lifecycle: open -> acknowledged -> resolved, escalation and edits, each change
audited and recording the trigger events automations consume, in the same commit."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.automations.conditions import SEVERITIES, STATUSES
from operator_core.clock import FrozenClock
from operator_core.db import tickets as ticket_db
from operator_core.db.tickets import TicketNotFoundError
from operator_core.errors import InvalidTransitionError, ValidationError
from operator_core.model.types import TICKET_SEVERITIES, TICKET_STATUSES

from tests.support.rows import Db, rows

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def events(db: Db, ticket_id: int) -> list[tuple[str, str | None, str | None]]:
    return [
        (r["event_type"], r["from_status"], r["to_status"])
        for r in rows(
            db, "SELECT * FROM ticket_events WHERE ticket_id = ? ORDER BY id", (ticket_id,)
        )
    ]


def audit_types(db: Db) -> list[str]:
    """The tickets' audit events (the fixture's executor also records seeding its policy)."""
    sql = "SELECT event_type FROM action_audit_log WHERE event_type LIKE 'ticket%' ORDER BY id"
    return [r[0] for r in rows(db, sql)]


def test_model_and_conditions_agree_on_severities_and_statuses() -> None:
    assert TICKET_SEVERITIES == SEVERITIES
    assert TICKET_STATUSES == STATUSES


async def test_open_records_fields_audit_and_created_event(
    make_executor: Any, db_path: Path
) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    t = await ex.open_ticket(
        "API down",
        "502s",
        "high",
        "pager",
        service="api",
        team="payments",
        assignee="ana",
        metadata={"region": "eu-west-1"},
    )
    assert t.id == 1 and t.status == "open" and t.severity == "high"
    assert (t.service, t.team, t.assignee) == ("api", "payments", "ana")
    assert t.metadata == {"region": "eu-west-1"}
    assert t.created_at == T0 and t.updated_at == T0
    again = await ex.require_ticket(1)
    assert again == t
    assert events(db_path, 1) == [("incident_created", None, None)]
    assert audit_types(db_path) == ["ticket_opened"]


async def test_ack_then_resolve_records_state_changes(make_executor: Any, db_path: Path) -> None:
    clock = FrozenClock(T0)
    ex: ActionExecutor = await make_executor(clock=clock)
    t = await ex.open_ticket("disk full")
    assert t.id is not None
    clock.advance(60)
    acked = await ex.acknowledge_ticket(t.id, "ana")
    assert acked.ticket.status == "acknowledged"
    assert acked.ticket.acknowledged_at == clock.now()
    assert acked.events == ["state_changed"]
    clock.advance(60)
    resolved = await ex.resolve_ticket(t.id, "ana")
    assert resolved.ticket.status == "resolved" and resolved.ticket.resolved_at == clock.now()
    assert events(db_path, t.id) == [
        ("incident_created", None, None),
        ("state_changed", "open", "acknowledged"),
        ("state_changed", "acknowledged", "resolved"),
    ]
    assert audit_types(db_path) == ["ticket_opened", "ticket_acknowledged", "ticket_resolved"]


async def test_resolve_straight_from_open(executor: ActionExecutor) -> None:
    t = await executor.open_ticket("flap")
    assert t.id is not None
    done = await executor.resolve_ticket(t.id, "ana")
    assert done.ticket.status == "resolved" and done.ticket.acknowledged_at is None


@pytest.mark.parametrize(
    ("steps", "refused", "message"),
    [
        (["ack"], "ack", "acknowledged"),
        (["resolve"], "ack", "resolved"),
        (["resolve"], "resolve", "already resolved"),
        (["resolve"], "escalate", "resolved"),
    ],
)
async def test_refused_transitions_change_nothing(
    executor: ActionExecutor, db_path: Path, steps: list[str], refused: str, message: str
) -> None:
    t = await executor.open_ticket("t")
    assert t.id is not None
    moves = {
        "ack": executor.acknowledge_ticket,
        "resolve": executor.resolve_ticket,
        "escalate": executor.escalate_ticket,
    }
    for step in steps:
        await moves[step](t.id, "ana")
    before = (rows(db_path, "SELECT * FROM tickets"), audit_types(db_path), events(db_path, t.id))
    with pytest.raises(InvalidTransitionError, match=message):
        await moves[refused](t.id, "ana")
    after = (rows(db_path, "SELECT * FROM tickets"), audit_types(db_path), events(db_path, t.id))
    assert [tuple(r) for r in after[0]] == [tuple(r) for r in before[0]]
    assert after[1:] == before[1:]


async def test_escalate_raises_one_step_or_to_a_given_severity(
    executor: ActionExecutor, db_path: Path
) -> None:
    t = await executor.open_ticket("slow", severity="low")
    assert t.id is not None
    assert (await executor.escalate_ticket(t.id, "ana")).ticket.severity == "medium"
    assert (await executor.escalate_ticket(t.id, "ana", "critical")).ticket.severity == "critical"
    with pytest.raises(InvalidTransitionError, match="already critical"):
        await executor.escalate_ticket(t.id, "ana")
    assert [e[0] for e in events(db_path, t.id)] == [
        "incident_created",
        "escalation",
        "escalation",
    ]


async def test_escalate_refuses_a_lower_or_equal_severity(executor: ActionExecutor) -> None:
    t = await executor.open_ticket("slow", severity="high")
    assert t.id is not None
    for lower in ("high", "medium", "low"):
        with pytest.raises(InvalidTransitionError, match="higher severity"):
            await executor.escalate_ticket(t.id, "ana", lower)
    with pytest.raises(ValidationError, match="severity"):
        await executor.escalate_ticket(t.id, "ana", "sev1")
    assert (await executor.require_ticket(t.id)).severity == "high"


async def test_update_fields_and_metadata(executor: ActionExecutor, db_path: Path) -> None:
    t = await executor.open_ticket("t", service="api", metadata={"a": "1", "b": "2"})
    assert t.id is not None
    change = await executor.update_ticket(
        t.id, "ana", {"service": "", "team": "core", "title": "t2"}, {"c": "3"}, ("a",)
    )
    assert change.ticket.service is None and change.ticket.team == "core"
    assert change.ticket.title == "t2"
    assert change.ticket.metadata == {"b": "2", "c": "3"}
    assert set(change.changes) == {"service", "team", "title", "metadata"}
    assert change.events == []  # no status or severity change: no trigger event
    assert audit_types(db_path)[-1] == "ticket_updated"


async def test_update_raising_severity_is_an_escalation(executor: ActionExecutor) -> None:
    t = await executor.open_ticket("t", severity="low")
    assert t.id is not None
    change = await executor.update_ticket(t.id, "ana", {"severity": "high"})
    assert change.events == ["escalation"]
    lowered = await executor.update_ticket(t.id, "ana", {"severity": "low"})
    assert lowered.events == []


async def test_update_with_the_same_values_writes_nothing(
    executor: ActionExecutor, db_path: Path
) -> None:
    t = await executor.open_ticket("t", service="api")
    assert t.id is not None
    before = audit_types(db_path)
    change = await executor.update_ticket(t.id, "ana", {"service": "api"})
    assert change.changes == {} and audit_types(db_path) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": {"status": "resolved"}}, "status"),
        ({"fields": {"colour": "red"}}, "colour"),
        ({}, "nothing to update"),
        ({"fields": {"severity": "sev1"}}, "severity"),
        ({"fields": {"title": "  "}}, "title"),
        ({"set_metadata": {"bad key": "x"}}, "metadata key"),
        ({"set_metadata": {"a": "1"}, "unset_metadata": ("a",)}, "both set and unset"),
        ({"fields": {"team": "a\nb"}}, "one line"),
    ],
)
async def test_bad_updates_are_refused(
    executor: ActionExecutor, db_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    t = await executor.open_ticket("t")
    assert t.id is not None
    before = audit_types(db_path)
    with pytest.raises(ValidationError, match=message):
        await executor.update_ticket(t.id, "ana", **kwargs)
    assert audit_types(db_path) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"title": ""}, "title"),
        ({"title": "t", "severity": "urgent"}, "severity"),
        ({"title": "t", "metadata": {"k": 1}}, "text"),
        ({"title": "t", "metadata": {f"k{i}": "v" for i in range(51)}}, "at most"),
    ],
)
async def test_bad_open_is_refused(
    executor: ActionExecutor, db_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        await executor.open_ticket(**kwargs)
    assert rows(db_path, "SELECT * FROM tickets") == []


async def test_unknown_ticket_is_named(executor: ActionExecutor) -> None:
    for call in (
        executor.require_ticket(9),
        executor.acknowledge_ticket(9, "ana"),
        executor.update_ticket(9, "ana", {"team": "x"}),
    ):
        with pytest.raises(TicketNotFoundError, match="no ticket with id 9"):
            await call


async def test_list_filters_by_status_newest_first(executor: ActionExecutor) -> None:
    ids = [(await executor.open_ticket(f"t{i}")).id for i in range(3)]
    assert ids[1] is not None
    await executor.acknowledge_ticket(ids[1], "ana")
    assert [t.id for t in await executor.list_tickets()] == ids[::-1]
    assert [t.id for t in await executor.list_tickets("open")] == [ids[2], ids[0]]
    assert [t.id for t in await executor.list_tickets("acknowledged")] == [ids[1]]
    with pytest.raises(ValidationError, match="status"):
        await executor.list_tickets("closed")


async def test_events_wait_until_a_runner_claims_and_consumes_them(
    executor: ActionExecutor,
) -> None:
    """Events recorded while no runner is up are all there for the first one to claim; a
    claim is a lease, and only its holder can mark an event consumed."""
    t = await executor.open_ticket("t")
    assert t.id is not None
    await executor.acknowledge_ticket(t.id, "ana")
    now, later = "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:30.000000Z"
    first = await executor.db.write(ticket_db.claim_events, "r1", now, later)
    assert [e.event_type for e in first] == ["incident_created", "state_changed"]
    assert first[0].facts["title"] == "t" and first[1].facts["status"] == "acknowledged"
    assert await executor.db.write(ticket_db.claim_events, "r2", now, later) == []
    # r1's lease runs out: r2 takes the events over, and r1 can no longer consume them.
    taken = await executor.db.write(ticket_db.claim_events, "r2", later, "2026-01-02T00:00:00Z")
    assert [e.id for e in taken] == [e.id for e in first]
    assert not await executor.db.write(ticket_db.consume_event, first[0].id, "r1", later)
    assert await executor.db.write(ticket_db.consume_event, first[0].id, "r2", later)
    assert not await executor.db.write(ticket_db.consume_event, first[0].id, "r2", later)
    remaining = await executor.db.write(
        ticket_db.claim_events, "r3", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"
    )
    assert [e.id for e in remaining] == [first[1].id]


@pytest.mark.sqlite_only("edits the file with sqlite3; PostgreSQL's triggers: test_pg_schema")
async def test_events_are_never_rewritten_or_deleted(
    executor: ActionExecutor, db_path: Path
) -> None:
    await executor.open_ticket("t")
    conn = sqlite3.connect(db_path)
    try:
        for sql in (
            "UPDATE ticket_events SET event_type = 'escalation'",
            "UPDATE ticket_events SET facts = '{}'",
            "DELETE FROM ticket_events",
        ):
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(sql)
    finally:
        conn.close()


@pytest.mark.sqlite_only("SQLite's schema history (user_version 7)")
async def test_a_version_7_database_with_tickets_upgrades(
    make_executor: Any, db_path: Path
) -> None:
    """Tickets made before the lifecycle existed read back with its defaults and move on."""
    from operator_core.db.schema import LATEST_VERSION, MIGRATIONS

    conn = sqlite3.connect(db_path, isolation_level=None)
    for step in MIGRATIONS[:7]:
        step(conn)
    conn.execute(
        "INSERT INTO tickets (title, summary, severity, status, created_at) "
        "VALUES ('old', 's', 'high', 'open', '2026-01-01T00:00:00.000000Z')"
    )
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    ex: ActionExecutor = await make_executor()
    old = await ex.require_ticket(1)
    assert (old.title, old.severity, old.status, old.metadata) == ("old", "high", "open", {})
    assert old.service is None and old.updated_at is None
    assert (await ex.acknowledge_ticket(1, "ana")).ticket.status == "acknowledged"
    assert rows(db_path, "PRAGMA user_version")[0][0] == LATEST_VERSION
