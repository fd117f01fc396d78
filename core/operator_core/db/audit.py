"""The audit log's writer: every event chained to the one before by a SHA-256 hash.

The chain's head is read inside the write transaction that appends, and held only as a local
of the call that appends: nothing is cached on the connection, so no rollback (of a whole
transaction or of a savepoint) can leave a stale head behind. A transaction that appends
several events at once hands them to ``append_all``, which reads the head once.

A process that publishes checkpoints runs each write transaction through ``noting``: the
appends note their event types on the connection, and the chain's new head is read before
COMMIT, so the checkpoint publisher hears of exactly what was committed.

A runner cycle in shared mode on PostgreSQL (db/shared.py) does not append as it goes: its
events wait in the connection's ``audit_buffer`` and ``flush`` appends them all at its end,
under the chain lock, before the head is read for ``noting`` and before COMMIT.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from operator_core.anchor.chain import GENESIS_HASH, event_hash
from operator_core.db.dialect import Sql
from operator_core.db.encode import dumps
from operator_core.db.records import AuditEntry

T = TypeVar("T")

# The one hash function of the chain, shared with the verifier (anchor/chain.py).
audit_hash = event_hash

Appended = tuple[int, str, tuple[str, ...]]
"""What a committed transaction appended: the new head's id and hash, the event types."""

# The newest event's hash (the chain's head): the last row of the primary key.
HEAD_SQL = "SELECT hash FROM action_audit_log ORDER BY id DESC LIMIT 1"

# One event, chained to the head read in the same transaction.
INSERT_SQL = """
INSERT INTO action_audit_log (proposal_id, workflow_id, event_type, event_data, actor,
    timestamp, prev_hash, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

# The chain's head with its id, read in the transaction that appended (the primary key's last).
TAIL_SQL = "SELECT id, hash FROM action_audit_log ORDER BY id DESC LIMIT 1"

# Every event in order, to verify the chain (the primary key, whole).
ALL_EVENTS_SQL = "SELECT * FROM action_audit_log ORDER BY id"

# The highest id ever given: events deleted from the end show here (no row: none given).
LAST_ID_SQL = Sql(
    sqlite="SELECT seq FROM sqlite_sequence WHERE name = 'action_audit_log'",
    postgres="SELECT last_id FROM audit_sequence WHERE id = 1 AND last_id > 0",
)


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
    buffer: list[Any] | None = getattr(conn, "audit_buffer", None)
    if buffer is not None:
        buffer.append((entry, now, proposal_id))
        return
    conn.execute(INSERT_SQL, _row(entry, now, head(conn), proposal_id))
    noted: list[str] | None = getattr(conn, "audit_types", None)
    if noted is not None:
        noted.append(entry.event_type)


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
    buffer: list[Any] | None = getattr(conn, "audit_buffer", None)
    if buffer is not None:
        buffer.extend((entry, now, pid) for entry, pid in zip(entries, ids, strict=True))
        return
    rows = []
    prev = head(conn)
    for entry, pid in zip(entries, ids, strict=True):
        row = _row(entry, now, prev, pid)
        rows.append(row)
        prev = row[-1]
    conn.executemany(INSERT_SQL, rows)
    noted: list[str] | None = getattr(conn, "audit_types", None)
    if noted is not None:
        noted.extend(entry.event_type for entry in entries)


def flush(conn: Any) -> None:
    """Append the events a shared-mode cycle buffered, in order, chained to the head read
    once the chain lock is held (held to COMMIT: the next holder reads this head)."""
    buffer: list[Any] | None = getattr(conn, "audit_buffer", None)
    if not buffer:
        return
    conn.audit_buffer = None  # appends from here on are the ordinary kind
    rows = []
    prev = conn.lock_chain() or GENESIS_HASH
    for entry, now, pid in buffer:
        row = _row(entry, now, prev, pid)
        rows.append(row)
        prev = row[-1]
    conn.executemany(INSERT_SQL, rows)
    noted: list[str] | None = conn.audit_types
    if noted is not None:
        noted.extend(entry.event_type for entry, _, _ in buffer)


def flushed(conn: Any, fn: Callable[..., T], *args: Any) -> T:
    """``fn(conn, *args)``, then its buffered events appended (``flush``)."""
    result = fn(conn, *args)
    flush(conn)
    return result


def noting(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> tuple[T, Appended | None]:
    """``fn(conn, *args)`` inside the open transaction, and what it appended (None if
    nothing): the head is read here, before COMMIT, so an append a savepoint rolled back
    is never reported. ``conn`` must take attributes (``connection.Connection``)."""
    types: list[str] = []
    conn.audit_types = types  # type: ignore[attr-defined]
    conn.audit_tail = None  # type: ignore[attr-defined]
    try:
        result = fn(conn, *args)
    finally:
        conn.audit_types = None  # type: ignore[attr-defined]
        # Set by an append that got its event's id and hash back (pg/append.py).
        tail: tuple[int, int, str] | None = conn.audit_tail  # type: ignore[attr-defined]
        conn.audit_tail = None  # type: ignore[attr-defined]
    if not types:
        return result, None
    if tail is not None and tail[0] == len(types):  # that append was the last
        return result, (tail[1], tail[2], tuple(types))
    row = conn.execute(TAIL_SQL).fetchone()
    return result, (row[0], row[1], tuple(types)) if row else None


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
