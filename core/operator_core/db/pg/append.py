"""A proposal on PostgreSQL in one statement: the safety and approval modes read, the row
inserted and its audit event chained, the chain's hash computed by the server.

``store_proposal`` (db/proposals.py) makes four round trips for this (the modes, the
insert, the chain's head, the event) between the lock and COMMIT, each a hop to the server
while every other writer waits for the lock. Here they are one: ``event_hash``
(anchor/chain.py) is SHA-256 of a JSON array whose only unknowns before the insert are
the head's hash and the new proposal's id, so Python writes the rest of the array
(``hash_tail``) and the server hashes ``'["' || head || '",' || id || tail`` (the head is
a SHA-256 hex digest, or the genesis zeros, which JSON writes as they are).
tests/core/test_pg_append.py holds the server's hash to ``event_hash``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from psycopg.rows import tuple_row

from operator_core.anchor.chain import GENESIS_HASH
from operator_core.clock import from_db
from operator_core.db.agent_budgets import check_agent
from operator_core.db.encode import dumps
from operator_core.db.killfile import PENDING_REASON, KillNotice
from operator_core.db.policy import held_entries, with_approval
from operator_core.db.proposals import store_proposal as store_proposal_steps
from operator_core.db.rows import proposal_values, with_id
from operator_core.errors import ObserveOnlyError

if TYPE_CHECKING:
    from operator_core.db.pg.rows import PgConn
    from operator_core.db.records import AuditEntry
    from operator_core.model.types import ActionProposal

# event_hash's escaping of a string (compact JSON, ASCII).
_esc: Any = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]

# The new proposal's columns, as db/rows.py's proposal_values gives them.
COLUMNS = (
    "ticket_id",
    "action_name",
    "action_type",
    "parameters",
    "reason",
    "status",
    "proposed_at",
    "proposed_by",
    "validated_at",
    "cancelled_at",
    "cancel_reason",
    "requires_approval",
    "approved_at",
    "approved_by",
    "rejected_at",
    "rejected_by",
    "rejection_reason",
    "expires_at",
    "workflow_id",
    "execution_order",
    "depends_on_proposal_id",
    "delay_seconds",
    "scheduled_at",
    "retry_count",
    "max_retries",
    "next_retry_at",
    "last_error",
    "created_at",
    "updated_at",
    "proposed_identity",
)

# A proposal and its event, unless the mode is OBSERVE (or ``killed``); held for approval
# while the approval mode is on. Reads safety_state's and policy's one rows (primary keys)
# and the chain's head (action_audit_log's primary key, its last row); returns the new ids
# (NULL when refused), whether it was held, and the safety row for the refusal's message.
PROPOSE_SQL = """
WITH gate AS (
    SELECT mode, changed_at, changed_by, reason,
        COALESCE((SELECT approval_mode FROM policy WHERE id = 1), 0) <> 0 AS held
    FROM safety_state WHERE id = 1
),
go AS (
    SELECT COALESCE((SELECT held FROM gate), false) AS held
    WHERE COALESCE((SELECT mode FROM gate), 'execute') = 'execute' AND %(killed)s::bigint = 0
),
p AS (
    INSERT INTO action_proposals (ticket_id, action_name, action_type, parameters, reason,
        status, proposed_at, proposed_by, validated_at, cancelled_at, cancel_reason,
        requires_approval, approved_at, approved_by, rejected_at, rejected_by,
        rejection_reason, expires_at, workflow_id, execution_order, depends_on_proposal_id,
        delay_seconds, scheduled_at, retry_count, max_retries, next_retry_at, last_error,
        created_at, updated_at, proposed_identity)
    SELECT %(ticket_id)s::bigint, %(action_name)s::text, %(action_type)s::text,
        %(parameters)s::text, %(reason)s::text, %(status)s::text, %(proposed_at)s::text,
        %(proposed_by)s::text, %(validated_at)s::text, %(cancelled_at)s::text,
        %(cancel_reason)s::text,
        CASE WHEN go.held THEN 1 ELSE %(requires_approval)s::bigint END,
        %(approved_at)s::text, %(approved_by)s::text, %(rejected_at)s::text,
        %(rejected_by)s::text, %(rejection_reason)s::text, %(expires_at)s::text,
        %(workflow_id)s::bigint, %(execution_order)s::bigint,
        %(depends_on_proposal_id)s::bigint, %(delay_seconds)s::double precision,
        %(scheduled_at)s::text, %(retry_count)s::bigint, %(max_retries)s::bigint,
        %(next_retry_at)s::text, %(last_error)s::text, %(created_at)s::text,
        %(updated_at)s::text, %(proposed_identity)s::text
    FROM go
    RETURNING id
),
head AS (
    SELECT COALESCE(
        (SELECT hash FROM action_audit_log ORDER BY id DESC LIMIT 1), %(genesis)s::text
    ) AS hash
),
a AS (
    INSERT INTO action_audit_log (proposal_id, workflow_id, event_type, event_data, actor,
        timestamp, prev_hash, hash)
    SELECT p.id, %(event_workflow_id)s::bigint, %(event_type)s::text,
        CASE WHEN go.held THEN %(held_data)s::text ELSE %(data)s::text END,
        %(actor)s::text, %(now)s::text, head.hash,
        encode(sha256(convert_to('["' || head.hash || '",' || p.id ||
            CASE WHEN go.held THEN %(held_tail)s::text ELSE %(tail)s::text END, 'UTF8')), 'hex')
    FROM p, go, head
    RETURNING id, hash
)
SELECT (SELECT id FROM p), (SELECT id FROM a), (SELECT hash FROM a), (SELECT held FROM go),
    g.mode, g.changed_at, g.changed_by, g.reason
FROM (SELECT 1) AS one LEFT JOIN gate AS g ON true
"""


def hash_tail(
    workflow_id: int | None, event_type: str, event_data: str, actor: str, timestamp: str
) -> str:
    """What follows the proposal's id in ``event_hash``'s array, written as it writes it."""
    w = "null" if workflow_id is None else str(int(workflow_id))
    return f",{w},{_esc(event_type)},{_esc(event_data)},{_esc(actor)},{_esc(timestamp)}]"


def store_proposal(
    conn: PgConn,
    proposal: ActionProposal,
    entries: list[AuditEntry],
    identity: str,
    now: str,
    require_execute: bool,
) -> ActionProposal:
    """db/proposals.py's ``store_proposal`` (the same checks, rows and event) in one
    statement after the agent's check; any other shape of call takes its steps."""
    if not require_execute or len(entries) != 1:
        return store_proposal_steps(conn, proposal, entries, identity, now, require_execute)
    check_agent(conn, proposal.proposed_by, identity, [proposal.action_name], now)
    (entry,) = entries
    data = held_data = dumps(entry.event_data)
    if not proposal.requires_approval:  # what the approval mode would make of it
        (held_entry,) = held_entries(entries)
        if held_entry is not entry:
            held_data = dumps(held_entry.event_data)
    tail = hash_tail(entry.workflow_id, entry.event_type, data, entry.actor, now)
    kill = getattr(conn, "kill_file", None)
    killed = kill is not None and kill.engaged()
    params = dict(zip(COLUMNS, proposal_values(proposal, identity), strict=True))
    params.update(
        killed=int(killed),
        genesis=GENESIS_HASH,
        event_workflow_id=entry.workflow_id,
        event_type=entry.event_type,
        data=data,
        held_data=held_data,
        actor=entry.actor,
        now=now,
        tail=tail,
        held_tail=tail
        if held_data is data
        else hash_tail(entry.workflow_id, entry.event_type, held_data, entry.actor, now),
    )
    # Plain tuples: the row is read here by position only (Row's column index costs more).
    row = conn.raw.cursor(row_factory=tuple_row).execute(PROPOSE_SQL, params).fetchone()
    new_id, event_id, event_hash, was_held, mode, changed_at, changed_by, reason = row
    if new_id is None:
        if mode is not None and mode != "execute":
            raise ObserveOnlyError(
                changed_at=from_db(changed_at), changed_by=changed_by, reason=reason
            )
        notice = (kill.read() if kill is not None else None) or KillNotice("unknown", None)
        raise ObserveOnlyError(
            changed_at=notice.engaged_at, changed_by=notice.actor, reason=PENDING_REASON
        )
    conn.total_changes += 2  # the row and its event: the COMMIT then NOTIFYs
    noted: list[str] | None = conn.audit_types
    if noted is not None:
        noted.append(entry.event_type)
        conn.audit_tail = (len(noted), event_id, event_hash)
    if was_held:
        proposal, _ = with_approval(proposal, entries)
    return with_id(proposal, new_id)
