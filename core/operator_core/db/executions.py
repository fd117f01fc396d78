"""Automation executions: one row per run of an automation on a ticket, with the version and
the frozen definition it started with and the walker's state.

What keeps an execution from starting twice is the database: ``idx_executions_open`` admits
one open execution per automation and ticket, ``idx_executions_age_once`` one age-triggered
execution per automation and ticket ever, and inserts do nothing on a conflict. Cancelling
(an operator, a resolved ticket, the kill switch) happens here, in the caller's transaction,
through ``ExecutionState.stop`` and the same statements the cancel path runs.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from operator_core.clock import from_db, to_db
from operator_core.db import audit as audit_log

# The reads the fast path shares live in automation_rows; importable from here as before.
from operator_core.db.automation_rows import LIST_SQL as LIST_SQL
from operator_core.db.automation_rows import OPEN_STATUSES as OPEN_STATUSES
from operator_core.db.automation_rows import PROPOSAL_ORIGIN_SQL as PROPOSAL_ORIGIN_SQL
from operator_core.db.automation_rows import STATUSES as STATUSES
from operator_core.db.automation_rows import Execution as Execution
from operator_core.db.automation_rows import ProposalOrigin as ProposalOrigin
from operator_core.db.automation_rows import list_executions as list_executions
from operator_core.db.automation_rows import proposal_origin as proposal_origin
from operator_core.db.automation_rows import row_to_execution as row_to_execution
from operator_core.db.cancel import CANCEL_ONE_SQL, STOP_ONE_SQL, cancel
from operator_core.db.encode import dumps
from operator_core.db.records import AuditEntry
from operator_core.errors import InvalidTransitionError, OperatorError
from operator_core.model.execution_state import CANCELLED, FINISHED, ExecutionState

# Who an automation's proposals are proposed by: this, then the automation's name.
AUTOMATION_ACTOR = "automation:"


class ExecutionNotFoundError(OperatorError, LookupError):
    """No automation execution has this id."""


# A new execution, unless one is open for this automation and ticket (idx_executions_open)
# or, for an age trigger, one ever was (idx_executions_age_once): then nothing is inserted.
INSERT_EXECUTION_SQL = """
INSERT INTO automation_executions (automation_id, automation_name, version, definition,
    ticket_id, trigger, trigger_event_id, status, state, next_wake_at, started_by, created_at,
    updated_at)
VALUES (:automation_id, :name, :version, :definition, :ticket_id, :trigger, :event_id,
    'PENDING', :state, :wake, :by, :now, :now)
ON CONFLICT DO NOTHING
RETURNING id
"""

# One execution (the primary key).
EXECUTION_SQL = "SELECT * FROM automation_executions WHERE id = ?"

# The open execution of an automation on a ticket (idx_executions_open).
OPEN_EXECUTION_SQL = """
SELECT id FROM automation_executions
WHERE automation_id = ? AND ticket_id = ? AND status IN ('PENDING', 'RUNNING')
"""

# Store the walker's state, only while the execution is open (the primary key).
SAVE_STATE_SQL = """
UPDATE automation_executions SET status = :status, state = :state, current_node = :node,
    next_wake_at = :wake, updated_at = :now, finished_at = :finished, error = :error
WHERE id = :id AND status IN ('PENDING', 'RUNNING')
"""

# Open executions due now, soonest first (idx_executions_wake).
DUE_SQL = """
SELECT * FROM automation_executions INDEXED BY idx_executions_wake
WHERE status IN ('PENDING', 'RUNNING') AND next_wake_at IS NOT NULL AND next_wake_at <= :now
ORDER BY next_wake_at, id LIMIT :limit
"""

# Whether an open execution is due now (idx_executions_wake).
DUE_PROBE_SQL = """
SELECT 1 FROM automation_executions INDEXED BY idx_executions_wake
WHERE status IN ('PENDING', 'RUNNING') AND next_wake_at IS NOT NULL AND next_wake_at <= :now
LIMIT 1
"""

# A ticket's open executions (idx_executions_ticket).
OPEN_FOR_TICKET_SQL = """
SELECT * FROM automation_executions
WHERE ticket_id = ? AND status IN ('PENDING', 'RUNNING') ORDER BY id
"""

# Every open execution (idx_executions_open).
ALL_OPEN_SQL = """
SELECT * FROM automation_executions INDEXED BY idx_executions_open
WHERE status IN ('PENDING', 'RUNNING') ORDER BY id
"""

# Each automation's newest execution (the end of each name's run in
# idx_executions_automation, then the primary key).
LATEST_PER_AUTOMATION_SQL = """
SELECT * FROM automation_executions WHERE id IN (
    SELECT MAX(id) FROM automation_executions GROUP BY automation_name)
"""

# Mark a proposal as made by an execution's node (the primary key).
ATTACH_PROPOSAL_SQL = """
UPDATE action_proposals
SET automation_execution_id = ?, automation_node = ?, retry_initial_delay_seconds = ?
WHERE id = ?
"""

# The proposals an execution made (idx_action_proposals_execution).
EXECUTION_PROPOSALS_SQL = """
SELECT id, automation_node, status, next_retry_at, last_error, cancel_reason
FROM action_proposals WHERE automation_execution_id = ? ORDER BY id
"""


# When a runner next has automation work: the first open execution's wake-up (past ones
# too: due now), an unclaimed ticket event (its creation: now) or the end of another runner's
# claim on one (the end of idx_executions_wake; idx_ticket_events_pending, empty when the
# runners keep up).
NEXT_WORK_SQL = """
SELECT MIN(t) FROM (
    SELECT MIN(next_wake_at) AS t FROM automation_executions INDEXED BY idx_executions_wake
        WHERE status IN ('PENDING', 'RUNNING') AND next_wake_at IS NOT NULL
    UNION ALL
    SELECT MIN(CASE WHEN claimed_by IS NULL THEN created_at ELSE claim_expires_at END)
        FROM ticket_events INDEXED BY idx_ticket_events_pending WHERE consumed_at IS NULL) AS due
"""

# The enabled automations a trigger type can start, with their current definitions
# (idx_automations_trigger, then the versions' primary key).
ENABLED_FOR_TRIGGER_SQL = """
SELECT a.id, a.name, a.current_version, v.definition
FROM automations a INDEXED BY idx_automations_trigger
JOIN automation_versions v ON v.automation_id = a.id AND v.version = a.current_version
WHERE a.trigger_event = ? AND a.enabled = 1
ORDER BY a.id
"""

# Whether a runner has work here now: a ticket event to claim (idx_ticket_events_pending) or
# an execution due (idx_executions_wake).
WORK_PROBE_SQL = """
SELECT
    EXISTS (SELECT 1 FROM ticket_events INDEXED BY idx_ticket_events_pending
        WHERE consumed_at IS NULL AND (claimed_by IS NULL OR claim_expires_at <= :now)),
    EXISTS (SELECT 1 FROM automation_executions INDEXED BY idx_executions_wake
        WHERE status IN ('PENDING', 'RUNNING') AND next_wake_at IS NOT NULL
        AND next_wake_at <= :now)
"""

# Open, unacknowledged tickets created in (:after, :upto], oldest first: those an age
# trigger reaches (idx_tickets_unacknowledged).
AGE_TICKETS_SQL = """
SELECT * FROM tickets INDEXED BY idx_tickets_unacknowledged
WHERE status = 'open' AND acknowledged_at IS NULL AND created_at > :after
    AND created_at <= :upto
ORDER BY created_at LIMIT :limit
"""

# The oldest open, unacknowledged ticket created after :after (idx_tickets_unacknowledged).
NEXT_AGE_TICKET_SQL = """
SELECT MIN(created_at) FROM tickets INDEXED BY idx_tickets_unacknowledged
WHERE status = 'open' AND acknowledged_at IS NULL AND created_at > :after
"""


@dataclass(frozen=True)
class ExecutionProposal:
    id: int
    node: str | None
    status: str
    next_retry_at: str | None
    last_error: str | None
    cancel_reason: str | None

    @property
    def ended(self) -> bool:
        """Ended for good: completed, cancelled, or failed with no retry waiting."""
        return self.status in ("completed", "cancelled") or (
            self.status == "failed" and self.next_retry_at is None
        )


def insert(
    conn: sqlite3.Connection,
    *,
    automation_id: int,
    name: str,
    version: int,
    definition: str,
    ticket_id: int,
    trigger: str,
    event_id: int | None,
    started_by: str,
    now: str,
    wake: str | None = None,
) -> int | None:
    """A new PENDING execution; None when one is already open for this automation and
    ticket (or an age trigger already fired for them). ``definition``: the stored JSON of
    the version, copied as it is."""
    row = conn.execute(
        INSERT_EXECUTION_SQL,
        {
            "automation_id": automation_id,
            "name": name,
            "version": version,
            "definition": definition,
            "ticket_id": ticket_id,
            "trigger": trigger,
            "event_id": event_id,
            "state": dumps(ExecutionState().to_json()),
            "wake": wake,
            "by": started_by,
            "now": now,
        },
    ).fetchone()
    return None if row is None else int(row[0])


def open_execution_id(conn: sqlite3.Connection, automation_id: int, ticket_id: int) -> int | None:
    row = conn.execute(OPEN_EXECUTION_SQL, (automation_id, ticket_id)).fetchone()
    return None if row is None else int(row[0])


def get(conn: sqlite3.Connection, execution_id: int) -> Execution | None:
    row = conn.execute(EXECUTION_SQL, (execution_id,)).fetchone()
    return None if row is None else row_to_execution(row)


def require(conn: sqlite3.Connection, execution_id: int) -> Execution:
    found = get(conn, execution_id)
    if found is None:
        raise ExecutionNotFoundError(f"no automation execution with id {execution_id}")
    return found


def save(conn: sqlite3.Connection, execution_id: int, state: ExecutionState, now: str) -> bool:
    """Store ``state`` and wake the execution at ``state.next_wake()`` (never, once it is
    finished or waits only for a proposal); False if it was no longer open."""
    wake = state.next_wake()
    done = conn.execute(
        SAVE_STATE_SQL,
        {
            "status": state.status,
            "state": dumps(state.to_json()),
            "node": state.current_node,
            "wake": to_db(wake),
            "now": now,
            "finished": to_db(state.finished_at),
            "error": state.error,
            "id": execution_id,
        },
    )
    return done.rowcount == 1


def due(conn: sqlite3.Connection, now: str, limit: int = 100) -> list[Execution]:
    return [row_to_execution(r) for r in conn.execute(DUE_SQL, {"now": now, "limit": limit})]


def any_due(conn: sqlite3.Connection, now: str) -> bool:
    return conn.execute(DUE_PROBE_SQL, {"now": now}).fetchone() is not None


def latest_per_automation(conn: sqlite3.Connection) -> dict[str, Execution]:
    """Each automation's newest execution, by automation name (the dashboard's list)."""
    rows = conn.execute(LATEST_PER_AUTOMATION_SQL)
    return {e.automation_name: e for e in map(row_to_execution, rows)}


def attach_proposal(
    conn: sqlite3.Connection,
    proposal_id: int,
    execution_id: int,
    node_id: str,
    retry_initial_delay: float | None = None,
) -> None:
    conn.execute(ATTACH_PROPOSAL_SQL, (execution_id, node_id, retry_initial_delay, proposal_id))


def proposals(conn: sqlite3.Connection, execution_id: int) -> list[ExecutionProposal]:
    return [ExecutionProposal(*r) for r in conn.execute(EXECUTION_PROPOSALS_SQL, (execution_id,))]


def audit(
    conn: sqlite3.Connection,
    event_type: str,
    execution: Execution,
    actor: str,
    now: str,
    **data: Any,
) -> None:
    """An execution's audit event; it names the execution, automation, version and ticket."""
    payload = {
        "execution_id": execution.id,
        "automation": execution.automation_name,
        "version": execution.version,
        "ticket_id": execution.ticket_id,
        **data,
    }
    audit_log.append(conn, AuditEntry(event_type, payload, actor), now)


def cancel_proposal(
    conn: sqlite3.Connection,
    proposal_id: int,
    actor: str,
    reason: str,
    identity: str | None,
    now: str,
) -> None:
    """Cancel an execution's pending proposal as ``operator cancel`` does; a running one is
    asked to stop (its runner records it cancelled); one already ended is left alone."""
    if cancel(conn, CANCEL_ONE_SQL, now, actor, reason, identity, id=proposal_id):
        audit_log.append(conn, AuditEntry("cancelled", {"reason": reason}, actor, proposal_id), now)
    elif conn.execute(STOP_ONE_SQL, (reason, actor, identity, proposal_id)).rowcount:
        audit_log.append(
            conn, AuditEntry("cancel_requested", {"reason": reason}, actor, proposal_id), now
        )


def cancel_one(
    conn: sqlite3.Connection,
    execution: Execution,
    reason: str,
    actor: str,
    identity: str | None,
    now: str,
) -> bool:
    """End an open execution as CANCELLED with its proposals in flight; False if it had
    already finished."""
    if execution.status in FINISHED:
        return False
    state = execution.state
    now_dt = from_db(now)
    assert now_dt is not None
    pending = state.stop(CANCELLED, reason, now_dt)
    if not save(conn, execution.id, state, now):
        return False
    for _, proposal_id in pending:
        cancel_proposal(conn, proposal_id, actor, reason, identity, now)
    audit(conn, "automation_execution_cancelled", execution, actor, now, reason=reason)
    return True


def cancel_by_id(
    conn: sqlite3.Connection,
    execution_id: int,
    reason: str,
    actor: str,
    identity: str | None,
    now: str,
) -> Execution:
    """An operator's cancel: the execution after it, or InvalidTransitionError when it had
    already finished."""
    execution = require(conn, execution_id)
    if not cancel_one(conn, execution, reason, actor, identity, now):
        raise InvalidTransitionError(
            f"automation execution {execution_id} is {execution.status}; only a pending or "
            "running execution can be cancelled"
        )
    return require(conn, execution_id)


def cancel_for_ticket(
    conn: sqlite3.Connection, ticket_id: int, reason: str, actor: str, now: str
) -> list[int]:
    """Cancel every open execution on a ticket (it was resolved): their ids."""
    rows = conn.execute(OPEN_FOR_TICKET_SQL, (ticket_id,)).fetchall()
    executions = [row_to_execution(r) for r in rows]
    return [e.id for e in executions if cancel_one(conn, e, reason, actor, None, now)]


def cancel_all_open(conn: sqlite3.Connection, reason: str, actor: str, now: str) -> list[int]:
    """Cancel every open execution (the kill switch): their ids."""
    executions = [row_to_execution(r) for r in conn.execute(ALL_OPEN_SQL).fetchall()]
    return [e.id for e in executions if cancel_one(conn, e, reason, actor, None, now)]


@dataclass(frozen=True)
class Candidate:
    """An enabled automation a trigger type can start, at its current version."""

    id: int
    name: str
    version: int
    definition: str


def enabled_for(conn: sqlite3.Connection, trigger: str) -> list[Candidate]:
    return [Candidate(*r) for r in conn.execute(ENABLED_FOR_TRIGGER_SQL, (trigger,))]


def work_waiting(conn: sqlite3.Connection, now: str) -> tuple[bool, bool]:
    """(a ticket event waits to be claimed, an execution is due)."""
    row = conn.execute(WORK_PROBE_SQL, {"now": now}).fetchone()
    return bool(row[0]), bool(row[1])


def age_tickets(
    conn: sqlite3.Connection, after: str, upto: str, limit: int = 500
) -> list[sqlite3.Row]:
    return conn.execute(AGE_TICKETS_SQL, {"after": after, "upto": upto, "limit": limit}).fetchall()


def next_age_ticket(conn: sqlite3.Connection, after: str) -> datetime | None:
    row = conn.execute(NEXT_AGE_TICKET_SQL, {"after": after}).fetchone()
    return from_db(row[0]) if row and row[0] else None


def next_work(conn: sqlite3.Connection) -> datetime | None:
    row = conn.execute(NEXT_WORK_SQL).fetchone()
    return from_db(row[0]) if row and row[0] else None
