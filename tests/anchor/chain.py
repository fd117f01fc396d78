"""A raw-SQLite writer that knows the audit format: builds real database files, tampers
with them the way an attacker who can write the file would, and checkpoints their head."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from operator_core.anchor.checkpoint import Checkpoint, SignedCheckpoint, sign
from operator_core.anchor.keys import SigningKey
from operator_core.anchor.verify import (
    EVENTS_SQL,
    GENESIS_HASH,
    SEQUENCE_SQL,
    Report,
    event_hash,
    verify_events,
)
from operator_core.db.schema import migrate

ORIGIN = "operator/test-db"
T0 = datetime(2026, 12, 3, 18, 0, 0, tzinfo=UTC)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ts(i: int) -> str:
    return stamp(T0 + timedelta(seconds=i))


def open_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path))
    return conn


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    row = conn.execute("SELECT id, hash FROM action_audit_log ORDER BY id DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def append(
    conn: sqlite3.Connection,
    event_type: str = "note",
    data: dict[str, Any] | None = None,
    actor: str = "alice@host",
    proposal_id: int | None = None,
    when: str | None = None,
) -> int:
    n, prev = head(conn)
    text = json.dumps(data or {"n": n + 1}, separators=(",", ":"), sort_keys=True)
    stamp = when or ts(n + 1)
    digest = event_hash(prev, proposal_id, None, event_type, text, actor, stamp)
    cur = conn.execute(
        "INSERT INTO action_audit_log (proposal_id, workflow_id, event_type, event_data, "
        "actor, timestamp, prev_hash, hash) VALUES (?, NULL, ?, ?, ?, ?, ?, ?)",
        (proposal_id, event_type, text, actor, stamp, prev, digest),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def fill(conn: sqlite3.Connection, n: int) -> None:
    conn.execute("BEGIN")
    for _ in range(n):
        append(conn)
    conn.execute("COMMIT")


def checkpoint(conn: sqlite3.Connection, key: SigningKey, origin: str = ORIGIN) -> SignedCheckpoint:
    size, digest = head(conn)
    return sign(
        Checkpoint(origin, size, digest, T0 + timedelta(seconds=size, milliseconds=500)), key
    )


def unlock(conn: sqlite3.Connection) -> None:
    """What an attacker does first: drop the append-only triggers."""
    conn.execute("DROP TRIGGER IF EXISTS action_audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS action_audit_log_no_delete")


def rechain(conn: sqlite3.Connection, start: int = 1) -> None:
    """Recompute prev_hash and hash from event ``start`` on, as a forger would."""
    prev = GENESIS_HASH
    if start > 1:
        prev = conn.execute(
            "SELECT hash FROM action_audit_log WHERE id < ? ORDER BY id DESC LIMIT 1", (start,)
        ).fetchone()[0]
    rows = conn.execute(
        "SELECT id, proposal_id, workflow_id, event_type, event_data, actor, timestamp "
        "FROM action_audit_log WHERE id >= ? ORDER BY id",
        (start,),
    ).fetchall()
    for id_, pid, wid, etype, data, actor, stamp in rows:
        digest = event_hash(prev, pid, wid, etype, data, actor, stamp)
        conn.execute(
            "UPDATE action_audit_log SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, id_)
        )
        prev = digest


def fix_sequence(conn: sqlite3.Connection) -> None:
    conn.execute(
        "UPDATE sqlite_sequence SET seq = (SELECT COALESCE(MAX(id), 0) FROM action_audit_log) "
        "WHERE name = 'action_audit_log'"
    )


def verify(
    conn: sqlite3.Connection, key: SigningKey, checkpoints: list[SignedCheckpoint]
) -> Report:
    seq = conn.execute(SEQUENCE_SQL).fetchone()
    return verify_events(
        conn.execute(EVENTS_SQL), checkpoints, key.verifier, ORIGIN, seq[0] if seq else None
    )


class Logged:
    """A database with 131 events and a checkpoint every 10 (13 of them, the last at 130)."""

    def __init__(self, path: Path, key: SigningKey) -> None:
        self.path = path
        self.key = key
        self.conn = open_db(path)
        self.cps: list[SignedCheckpoint] = []
        for _ in range(13):
            fill(self.conn, 10)
            self.cps.append(checkpoint(self.conn, key))
        fill(self.conn, 1)

    def verify(self) -> Report:
        return verify(self.conn, self.key, self.cps)


def kinds(report: Report) -> list[str]:
    return [f.kind for f in report.findings.items]


def messages(report: Report) -> list[str]:
    return [f.message for f in report.findings.items]
