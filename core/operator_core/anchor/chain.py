"""What the audit writer (``db/``) and the verifier agree on: the hash of one event, the
first event's ``prev_hash``, the form of a database's origin and the parameters' hash. A leaf
(it imports neither ``db`` nor the signing code), so the writer shares it at no cost."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from typing import Any

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the audit log's first event."""

# The writer's encoding: compact, keys sorted, ASCII; a tuple encodes as a JSON array.
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str)
_esc = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_sha256 = hashlib.sha256


def event_hash(
    prev_hash: str,
    proposal_id: int | None,
    workflow_id: int | None,
    event_type: str,
    event_data: str,
    actor: str,
    timestamp: str,
) -> str:
    """SHA-256 of the event's fields as one JSON array: the chain's one hash function.

    The array is written out here rather than by the JSON encoder (a fifth of the cost of
    verifying an event); a value of an unexpected type, which only a tampered row has,
    goes through the encoder."""
    if (
        (proposal_id is None or type(proposal_id) is int)
        and (workflow_id is None or type(workflow_id) is int)
        and str is type(prev_hash) is type(event_type) is type(event_data)
        and str is type(actor) is type(timestamp)
    ):
        p = "null" if proposal_id is None else str(proposal_id)
        w = "null" if workflow_id is None else str(workflow_id)
        text = (
            f"[{_esc(prev_hash)},{p},{w},{_esc(event_type)},{_esc(event_data)},"
            f"{_esc(actor)},{_esc(timestamp)}]"
        )
    else:
        fields = (prev_hash, proposal_id, workflow_id, event_type, event_data, actor, timestamp)
        text = _ENCODER.encode(fields)
    return _sha256(text.encode()).hexdigest()


def new_origin() -> str:
    """A fresh origin for a new database: stored once in it (schema v8), never changed."""
    return f"operator/{uuid.uuid4().hex[:16]}"


def parameters_sha256(parameters: Any) -> str:
    """SHA-256 of an action's parameters in canonical JSON (keys sorted, compact, ASCII):
    recorded in the events that act on them, so a later edit of the row shows."""
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _sha256(text.encode()).hexdigest()


# This database's origin, stored once by schema v8 (named in every checkpoint).
ORIGIN_SQL = "SELECT origin FROM audit_origin WHERE id = 1"


def read_origin(conn: sqlite3.Connection) -> str | None:
    """The database's origin; None for a database from before schema v8."""
    try:
        row = conn.execute(ORIGIN_SQL).fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None
