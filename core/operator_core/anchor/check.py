"""``operator audit verify`` in one call: the chain against the published checkpoints, then
the proposals table against the events, over one SQLite connection (a snapshot: run it
inside one read transaction so both passes see the same database)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from operator_core.anchor.chain import GENESIS_HASH, read_origin
from operator_core.anchor.checkpoint import SignedCheckpoint, read_checkpoints
from operator_core.anchor.crosscheck import (
    PROPOSAL_EVENTS_SQL,
    PROPOSALS_SQL,
    WORKFLOW_DECISIONS_SQL,
    cross_check,
)
from operator_core.anchor.findings import Finding
from operator_core.anchor.keys import SigningKey, VerifierKey
from operator_core.anchor.ledger import export_ledger_file
from operator_core.anchor.verify import (
    EVENTS_RANGE_SQL,
    EVENTS_SQL,
    SEQUENCE_SQL,
    Report,
    verify_events,
)
from operator_core.errors import ConfigError

# The hash of the event before an export's first (the primary key).
PREV_HASH_SQL = "SELECT hash FROM action_audit_log WHERE id < ? ORDER BY id DESC LIMIT 1"
# The newest event's id.
LAST_ID_SQL = "SELECT MAX(id) FROM action_audit_log"


def verify_database(
    conn: sqlite3.Connection,
    checkpoints: Iterable[SignedCheckpoint],
    key: VerifierKey,
    origin: str,
    sequence_sql: str = SEQUENCE_SQL,
) -> Report:
    """``sequence_sql``: the query of the highest id ever given, SQLite's by default; a
    caller that knows the engine passes ``db.audit.LAST_ID_SQL`` (anchor/ knows no db/)."""
    seq = conn.execute(sequence_sql).fetchone()
    report = verify_events(
        conn.execute(EVENTS_SQL), checkpoints, key, origin, seq[0] if seq else None
    )
    state = cross_check(
        conn.execute(PROPOSALS_SQL),
        conn.execute(PROPOSAL_EVENTS_SQL),
        conn.execute(WORKFLOW_DECISIONS_SQL),
    )
    report.findings.merge(state)
    return report


def read_checkpoint_files(paths: Sequence[Path]) -> tuple[list[SignedCheckpoint], list[str]]:
    """Every checkpoint in ``paths`` (checkpoint files, or syslog lines and webhook logs
    holding one-line checkpoints), and a note for each file that had unreadable records."""
    found: list[SignedCheckpoint] = []
    notes: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
                text = f.read()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot read checkpoints from {path}: {exc.strerror}") from exc
        if "\n\n" not in text and " | " in text:
            text = "".join(_one_line_records(text))
        result = read_checkpoints(text.splitlines(keepends=True))
        found += result.checkpoints
        if result.malformed:
            notes.append(f"{path}: {result.malformed} unreadable checkpoint records")
    return found, notes


def _one_line_records(text: str) -> Iterable[str]:
    for line in text.splitlines():
        start = line.find("operator/")
        if start >= 0 and " | " in line:
            yield line[start:].replace(" | ", "\n") + "\n\n"


def verify_with_origin(
    conn: sqlite3.Connection,
    checkpoints: Iterable[SignedCheckpoint],
    key: VerifierKey,
    expected_origin: str | None = None,
    sequence_sql: str = SEQUENCE_SQL,
) -> tuple[str, Report, int]:
    """``verify_database`` with the database's own origin, checkpoints of other databases
    set aside (a checkpoint directory may serve several): (origin, report, set aside).
    ``expected_origin``: the origin the verifier recorded; another one is a finding."""
    origin = read_origin(conn) or ""
    mine = [c for c in checkpoints if c.checkpoint.origin == origin]
    other = sum(1 for c in checkpoints if c.checkpoint.origin != origin)
    report = verify_database(conn, mine, key, origin, sequence_sql)
    if expected_origin is not None and expected_origin != origin:
        report.findings.add(
            Finding(
                "foreign_origin",
                f"this database's origin is {origin!r}, not {expected_origin!r}: it was "
                "replaced, or its origin rewritten to escape its checkpoints",
            )
        )
    return origin, report, other


def export_database(
    conn: sqlite3.Connection,
    path: Path,
    key: SigningKey,
    checkpoints: Iterable[SignedCheckpoint],
    first: int,
    last: int | None,
) -> tuple[int, int, int]:
    """Write events ``first``..``last`` (default: the newest) as a ledger at ``path``:
    (first, last, events written)."""
    origin = read_origin(conn) or ""
    newest = conn.execute(LAST_ID_SQL).fetchone()[0] or 0
    last = newest if last is None else min(last, newest)
    first = max(first, 1)
    if last < first:
        raise ConfigError(f"no events from {first} to {last} (the log ends at event {newest})")
    row = conn.execute(PREV_HASH_SQL, (first,)).fetchone()
    count = export_ledger_file(
        path,
        rows=conn.execute(EVENTS_RANGE_SQL, {"first": first, "last": last}),
        checkpoints=checkpoints,
        key=key,
        origin=origin,
        first=first,
        last=last,
        prev_hash=row[0] if row else GENESIS_HASH,
    )
    return first, last, count
