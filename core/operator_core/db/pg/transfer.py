"""``operator copy``: a whole SQLite Operator database into PostgreSQL, in one transaction.

The source is opened read-only (never migrated, never written) and read in one snapshot; a
runner live on it is refused (what it wrote after the snapshot would be lost). The target is
migrated and filled in ONE write transaction (the write lock first, as every write): a
target already holding Operator rows is refused, and a failure anywhere leaves the target as
it was, schema included. Rows keep their ids (the identity columns are BY DEFAULT), then each
identity moves past the highest id SQLite ever gave; the audit log keeps its ids and hashes,
so the chain verifies unchanged, and ``audit_sequence`` takes sqlite_sequence's value (a
deleted tail still shows). ``audit_origin`` is copied too: it is the same chain, so the
checkpoints signed before the move still vouch for it.

Triggers: PostgreSQL's fire on INSERT only to number the audit log (a copy brings its ids)
and to keep automation versions in order (a copy inserts them in order); the rest refuse
UPDATE/DELETE/TRUNCATE or stamp updates, which a copy never does. They are switched off
anyway for the copy: ``session_replication_role = replica`` (superuser, or a role granted
SET on it) for the transaction, else, as the tables' owner, ``DISABLE TRIGGER USER`` and
ENABLE again before COMMIT (both transactional: no other session sees them off).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from operator_core.clock import utcnow
from operator_core.db import audit, heartbeats
from operator_core.db.pg import schema
from operator_core.db.pg.rows import PgConn
from operator_core.db.schema import LATEST_VERSION as SQLITE_LATEST
from operator_core.errors import DatabaseError

BATCH = 5000
"""Rows read from SQLite per fetch: the copy's memory is one batch, whatever the size."""
REPORT_EVERY = 100_000
"""A progress line per this many rows of one table (and one per table)."""


@dataclass(frozen=True)
class Table:
    """One table: the source's rows in key order, and the target's COPY."""

    name: str
    select: str
    copy: str
    identity: bool = False  # an identity ``id`` in the first column, moved past the copy


# Every table of the schema, parents before children (foreign keys hold with the triggers
# on). Each SELECT reads its table whole by primary key; tests/core/test_pg_copy.py fails
# when a table exists in either schema that is not here.
TABLES: tuple[Table, ...] = (
    Table("tickets", "SELECT * FROM tickets ORDER BY id", "COPY tickets FROM STDIN", identity=True),
    Table(
        "workflows",
        "SELECT * FROM workflows ORDER BY id",
        "COPY workflows FROM STDIN",
        identity=True,
    ),
    Table(
        "action_proposals",
        "SELECT * FROM action_proposals ORDER BY id",
        "COPY action_proposals FROM STDIN",
        identity=True,
    ),
    Table(
        "action_records",
        "SELECT * FROM action_records ORDER BY id",
        "COPY action_records FROM STDIN",
        identity=True,
    ),
    Table(
        "ticket_events",
        "SELECT * FROM ticket_events ORDER BY id",
        "COPY ticket_events FROM STDIN",
        identity=True,
    ),
    Table(
        "automations",
        "SELECT * FROM automations ORDER BY id",
        "COPY automations FROM STDIN",
        identity=True,
    ),
    Table(
        "automation_versions",
        "SELECT * FROM automation_versions ORDER BY automation_id, version",
        "COPY automation_versions FROM STDIN",
    ),
    Table(
        "automation_executions",
        "SELECT * FROM automation_executions ORDER BY id",
        "COPY automation_executions FROM STDIN",
        identity=True,
    ),
    Table(
        "action_audit_log",
        "SELECT * FROM action_audit_log ORDER BY id",
        "COPY action_audit_log FROM STDIN",
    ),
    Table("runners", "SELECT * FROM runners ORDER BY id", "COPY runners FROM STDIN"),
    Table(
        "budget_waits",
        "SELECT * FROM budget_waits ORDER BY action_name",
        "COPY budget_waits FROM STDIN",
    ),
    Table(
        "agent_budgets",
        "SELECT * FROM agent_budgets ORDER BY agent",
        "COPY agent_budgets FROM STDIN",
    ),
    # The one-row tables every new database seeds: the source's rows replace the seeds.
    Table("safety_state", "SELECT * FROM safety_state ORDER BY id", "COPY safety_state FROM STDIN"),
    Table("policy", "SELECT * FROM policy ORDER BY id", "COPY policy FROM STDIN"),
    Table("audit_origin", "SELECT * FROM audit_origin ORDER BY id", "COPY audit_origin FROM STDIN"),
)

# The target's own bookkeeping, not copied: the schema version, and the audit log's
# counter (set from sqlite_sequence below).
TARGET_ONLY = ("operator_schema", "audit_sequence")

# The seeds a new target holds, replaced by the source's rows (each one row, whole table).
CLEAR_SEEDS_SQL = "DELETE FROM safety_state; DELETE FROM policy; DELETE FROM audit_origin"

# Any Operator row beyond the seeds (each EXISTS stops at a table's first row).
HOLDS_ROWS_SQL = """
SELECT EXISTS (SELECT 1 FROM tickets) OR EXISTS (SELECT 1 FROM workflows)
    OR EXISTS (SELECT 1 FROM action_proposals) OR EXISTS (SELECT 1 FROM action_records)
    OR EXISTS (SELECT 1 FROM ticket_events) OR EXISTS (SELECT 1 FROM automations)
    OR EXISTS (SELECT 1 FROM automation_versions) OR EXISTS (SELECT 1 FROM automation_executions)
    OR EXISTS (SELECT 1 FROM action_audit_log) OR EXISTS (SELECT 1 FROM runners)
    OR EXISTS (SELECT 1 FROM budget_waits) OR EXISTS (SELECT 1 FROM agent_budgets)
    OR EXISTS (SELECT 1 FROM audit_sequence WHERE last_id > 0)
"""

# A table's columns in order, on each side (the catalogs).
SOURCE_COLUMNS_SQL = "SELECT name FROM pragma_table_info(?) ORDER BY cid"
TARGET_COLUMNS_SQL = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position
"""

# The highest id SQLite ever gave in a table (AUTOINCREMENT's row; none: never one).
SQLITE_SEQ_SQL = "SELECT seq FROM sqlite_sequence WHERE name = ?"

# The audit log's highest id (the primary key's last).
AUDIT_MAX_SQL = "SELECT MAX(id) FROM action_audit_log"

# Move a table's identity past the highest id copied (the next id given is that + 1).
SETVAL_SQL = "SELECT setval(pg_get_serial_sequence(%s, 'id'), CAST(%s AS BIGINT))"

# The audit log's highest id ever given (the one row, by primary key).
SET_AUDIT_SEQUENCE_SQL = "UPDATE audit_sequence SET last_id = %s WHERE id = 1"

INSERT_TRIGGERS = {
    ("action_audit_log", "action_audit_log_next_id"),
    ("automation_versions", "automation_versions_in_order"),
}
"""Our triggers that fire on INSERT, both harmless to a copy (the module's docstring); a
test fails when another appears, so it is looked at before a copy meets it."""

REPLICA_SQL = "SET LOCAL session_replication_role = replica"

# The tables with triggers of ours, switched off as their owner when replica is not allowed.
DISABLE_TRIGGERS_SQL = """
ALTER TABLE action_proposals DISABLE TRIGGER USER;
ALTER TABLE workflows DISABLE TRIGGER USER;
ALTER TABLE action_audit_log DISABLE TRIGGER USER;
ALTER TABLE ticket_events DISABLE TRIGGER USER;
ALTER TABLE automation_versions DISABLE TRIGGER USER
"""
ENABLE_TRIGGERS_SQL = """
ALTER TABLE action_proposals ENABLE TRIGGER USER;
ALTER TABLE workflows ENABLE TRIGGER USER;
ALTER TABLE action_audit_log ENABLE TRIGGER USER;
ALTER TABLE ticket_events ENABLE TRIGGER USER;
ALTER TABLE automation_versions ENABLE TRIGGER USER
"""

Progress = Callable[[str], None]


@dataclass
class CopyReport:
    source: str
    target: str
    schema_version: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    triggers: str = ""
    audit_ok: bool = False
    audit_events: int = 0
    audit_message: str = ""
    verify_seconds: float = 0.0
    total_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "schema_version": self.schema_version,
            "tables": {
                name: {"rows": n, "seconds": round(self.seconds[name], 3)}
                for name, n in self.rows.items()
            },
            "rows": sum(self.rows.values()),
            "triggers": self.triggers,
            "audit": {
                "ok": self.audit_ok,
                "events": self.audit_events,
                "message": self.audit_message,
                "seconds": round(self.verify_seconds, 3),
            },
            "seconds": round(self.total_seconds, 3),
        }


# ---------------------------------------------------------------------------- the source


def open_source(path: Path) -> sqlite3.Connection:
    """The source, read-only, in one read snapshot; refused in one line unless it is an
    Operator database of this version with no runner live on it."""
    try:
        if not path.is_file():
            raise DatabaseError(f"no database at {path}: nothing to copy")
        conn = sqlite3.connect(
            f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, isolation_level=None
        )
    except (OSError, sqlite3.Error) as exc:  # a name too long, a directory we may not read
        raise DatabaseError(f"cannot open {path}: {exc}") from None
    try:
        conn.execute("BEGIN")  # one snapshot from the first read to the end of the copy
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        _check_source_version(conn, path, version)
        live = heartbeats.live_runners(conn, utcnow())
    except sqlite3.Error as exc:
        conn.close()
        raise DatabaseError(f"cannot read {path}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    if live:
        first = live[0]
        conn.close()
        raise DatabaseError(
            f"{len(live)} runner(s) live on {path} (first: {first.id} on {first.host}, pid "
            f"{first.pid}): stop them before copying, or their later work is lost"
        )
    return conn


def _check_source_version(conn: sqlite3.Connection, path: Path, version: int) -> None:
    if version == 0:
        raise DatabaseError(f"{path} is not an Operator database (schema version 0)")
    if version > SQLITE_LATEST:
        raise DatabaseError(
            f"{path} has schema version {version}, newer than this Operator understands "
            f"({SQLITE_LATEST}); copy it with the Operator that wrote it"
        )
    if version < SQLITE_LATEST:
        raise DatabaseError(
            f"{path} has schema version {version}, older than this Operator's "
            f"({SQLITE_LATEST}): run 'operator migrate --db {path}' first (copy never "
            "writes its source)"
        )


def _sqlite_seq(conn: sqlite3.Connection, table: str) -> int:
    row = conn.execute(SQLITE_SEQ_SQL, (table,)).fetchone()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------------------- the target


def copy_into(
    conn: PgConn,
    source: sqlite3.Connection,
    report: CopyReport,
    progress: Progress,
    display: str,
) -> CopyReport:
    """The whole copy, inside the write transaction the caller opened on ``conn`` (the
    caller commits, or rolls back if this raises)."""
    import psycopg

    started = time.perf_counter()
    report.schema_version = schema.migrate_locked(conn, display)
    if conn.raw.execute(HOLDS_ROWS_SQL).fetchone()[0]:
        raise DatabaseError(
            f"{display} already holds Operator rows: copy only into an empty database; "
            "nothing was written to it"
        )
    progress(f"copy: {report.source} -> {display}")
    conn.raw.execute("SAVEPOINT replica")
    try:
        conn.raw.execute(REPLICA_SQL)
        conn.raw.execute("RELEASE replica")
        report.triggers = "session_replication_role"
    except psycopg.errors.InsufficientPrivilege:
        conn.raw.execute("ROLLBACK TO replica")
        conn.raw.execute(DISABLE_TRIGGERS_SQL)
        report.triggers = "disabled as owner"
    conn.raw.execute(CLEAR_SEEDS_SQL)
    for table in TABLES:
        _copy_table(conn, source, table, report, progress)
    audit_max = source.execute(AUDIT_MAX_SQL).fetchone()[0] or 0
    audit_last = max(_sqlite_seq(source, "action_audit_log"), audit_max)
    conn.raw.execute(SET_AUDIT_SEQUENCE_SQL, (audit_last,))
    if report.triggers == "disabled as owner":
        conn.raw.execute(ENABLE_TRIGGERS_SQL)
    began = time.perf_counter()
    verified = audit.verify_chain(_Streaming(conn))  # type: ignore[arg-type]
    report.audit_ok, report.audit_events, report.audit_message = verified
    report.verify_seconds = time.perf_counter() - began
    progress(f"copy: audit chain: {report.audit_message} ({report.verify_seconds:.2f}s)")
    if not report.audit_ok and _source_verifies(source):
        raise DatabaseError(f"the copied audit chain does not verify: {report.audit_message}")
    report.total_seconds = time.perf_counter() - started
    return report


class _Streaming:
    """``conn`` for audit.verify_chain, reading the whole log through a server-side cursor
    a batch at a time (a client cursor would hold every event in memory at once)."""

    def __init__(self, conn: PgConn) -> None:
        self._conn = conn

    def execute(self, sql: Any, params: Any = ()) -> Any:
        if sql is not audit.ALL_EVENTS_SQL:
            return self._conn.execute(sql, params)
        cursor = self._conn.raw.cursor(name="operator_copy_verify")
        cursor.itersize = BATCH
        return cursor.execute(sql)


def _source_verifies(source: sqlite3.Connection) -> bool:
    """Whether the source's own chain verifies (a copy reproduces a broken one as it is)."""
    source.row_factory = sqlite3.Row
    try:
        return audit.verify_chain(source)[0]
    finally:
        source.row_factory = None


def _copy_table(
    conn: PgConn, source: sqlite3.Connection, table: Table, report: CopyReport, progress: Progress
) -> None:
    began = time.perf_counter()
    theirs = [row[0] for row in source.execute(SOURCE_COLUMNS_SQL, (table.name,))]
    ours = [row[0] for row in conn.raw.execute(TARGET_COLUMNS_SQL, (table.name,))]
    if theirs != ours:
        raise DatabaseError(
            f"table {table.name} has columns {theirs} in the source and {ours} in the target"
        )
    rows = 0
    highest = 0
    cursor = source.execute(table.select)
    with conn.raw.cursor() as out, out.copy(table.copy) as copy:
        while batch := cursor.fetchmany(BATCH):
            for row in batch:
                copy.write_row(row)
            rows += len(batch)
            if table.identity:
                highest = max(highest, batch[-1][0])  # in id order: the batch's last
            if rows % REPORT_EVERY < len(batch) and rows >= REPORT_EVERY:
                progress(f"copy: {table.name}: {rows:,} rows so far")
    conn.total_changes += rows
    if table.identity:
        last = max(highest, _sqlite_seq(source, table.name))
        if last > 0:  # else no id was ever given: the sequence starts at 1 as it is
            conn.raw.execute(SETVAL_SQL, (table.name, last))
    seconds = time.perf_counter() - began
    report.rows[table.name] = rows
    report.seconds[table.name] = seconds
    progress(f"copy: {table.name}: {rows:,} rows in {seconds:.2f}s")
