"""The audit log's writer: every event chained to the one before by a SHA-256 hash.

The chain's head is read inside the write transaction that appends, and held only as a local
of the call that appends: nothing is cached on the connection, so no rollback (of a whole
transaction or of a savepoint) can leave a stale head behind. A transaction that appends
several events at once hands them to ``append_all``, which reads the head once.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from typing import Any

from operator_core.db.encode import dumps
from operator_core.db.records import GENESIS_HASH, AuditEntry

# The newest event's hash (the chain's head): the last row of the primary key.
HEAD_SQL = "SELECT hash FROM action_audit_log ORDER BY id DESC LIMIT 1"

# One event, chained to the head read in the same transaction.
INSERT_SQL = """
INSERT INTO action_audit_log (proposal_id, workflow_id, event_type, event_data, actor,
    timestamp, prev_hash, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

# Every event in order, to verify the chain (the primary key, whole).
ALL_EVENTS_SQL = "SELECT * FROM action_audit_log ORDER BY id"

# The highest id ever given: events deleted from the end show here.
LAST_ID_SQL = "SELECT seq FROM sqlite_sequence WHERE name = 'action_audit_log'"


def audit_hash(
    prev_hash: str,
    proposal_id: int | None,
    workflow_id: int | None,
    event_type: str,
    event_data: str,
    actor: str,
    timestamp: str,
) -> str:
    """SHA-256 of the event's fields as one JSON array (a tuple encodes as a list)."""
    payload = dumps((prev_hash, proposal_id, workflow_id, event_type, event_data, actor, timestamp))
    return hashlib.sha256(payload.encode()).hexdigest()


def head(conn: sqlite3.Connection) -> str:
    row = conn.execute(HEAD_SQL).fetchone()
    return row[0] if row else GENESIS_HASH


def _row(entry: AuditEntry, now: str, prev: str, proposal_id: int | None) -> tuple[Any, ...]:
    if proposal_id is None:
        proposal_id = entry.proposal_id
    data = dumps(entry.event_data)
    digest = audit_hash(
        prev, proposal_id, entry.workflow_id, entry.event_type, data, entry.actor, now
    )
    return (proposal_id, entry.workflow_id, entry.event_type, data, entry.actor, now, prev, digest)


def append(
    conn: sqlite3.Connection, entry: AuditEntry, now: str, proposal_id: int | None = None
) -> None:
    """Append one event (for ``proposal_id`` if given, else the entry's own: a proposal's
    events are made before it has an id)."""
    conn.execute(INSERT_SQL, _row(entry, now, head(conn), proposal_id))


def append_all(
    conn: sqlite3.Connection,
    entries: Sequence[AuditEntry],
    now: str,
    proposal_ids: Sequence[int | None] | None = None,
) -> None:
    """Append events in this order, each chained to the one before, in one statement.
    ``proposal_ids``, if given, stand in for the entries' own, one for one."""
    if not entries:
        return
    ids = proposal_ids if proposal_ids is not None else [None] * len(entries)
    rows = []
    prev = head(conn)
    for entry, pid in zip(entries, ids, strict=True):
        row = _row(entry, now, prev, pid)
        rows.append(row)
        prev = row[-1]
    conn.executemany(INSERT_SQL, rows)


def verify_chain(conn: sqlite3.Connection) -> tuple[bool, int, str]:
    """Recompute the hash chain: (ok, events checked, message)."""
    prev = GENESIS_HASH
    expected_id = 1
    count = 0
    for row in conn.execute(ALL_EVENTS_SQL):
        if row["id"] != expected_id:
            return False, count, f"event {expected_id} is missing (found {row['id']})"
        if row["prev_hash"] != prev:
            return False, count, f"event {row['id']}: chain broken (prev_hash differs)"
        digest = audit_hash(
            prev,
            row["proposal_id"],
            row["workflow_id"],
            row["event_type"],
            row["event_data"],
            row["actor"],
            row["timestamp"],
        )
        if digest != row["hash"]:
            return False, count, f"event {row['id']}: contents were altered"
        prev = row["hash"]
        expected_id += 1
        count += 1
    seq = conn.execute(LAST_ID_SQL).fetchone()
    if seq is not None and seq[0] > count:
        return False, count, f"events {count + 1}..{seq[0]} were deleted"
    return True, count, f"{count} events, chain intact"
