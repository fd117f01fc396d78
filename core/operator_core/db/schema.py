"""The SQLite schema and its versioned migrations.

``SCHEMA_SQL`` and ``ACTIONS_SCHEMA_SQL`` keep the seeds' table shapes (so a database made by
the seeds' code opens); ``MIGRATIONS`` brings any database to the current version, each step
in one transaction, stamped with ``PRAGMA user_version``.
"""

from __future__ import annotations

from operator_core.clock import datetime, to_db, to_utc
from operator_core.db.schema_later import (
    V12_SQL,
    _migrate_v9,
    _migrate_v10,
    _migrate_v11,
    _migrate_v13,
    _migrate_v14,
)
from operator_core.db.schema_steps import NOW_SQL as _NOW_SQL
from operator_core.db.schema_steps import add_column as _add_column
from operator_core.db.schema_steps import normalise_times as _normalise_times
from operator_core.db.schema_steps import script as _script
from operator_core.db.schema_steps import split_statements
from operator_core.errors import SchemaTooNewError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL DEFAULT 'medium',
    status TEXT NOT NULL DEFAULT 'open',
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""

_ACTIONS_TABLES_SQL = """
CREATE TABLE IF NOT EXISTS action_proposals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER,
    action_name TEXT NOT NULL,
    action_type TEXT NOT NULL DEFAULT 'subject',
    parameters TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'proposed',
    proposed_at TEXT NOT NULL,
    proposed_by TEXT NOT NULL DEFAULT 'agent',
    validated_at TEXT,
    cancelled_at TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (ticket_id) REFERENCES tickets(id)
);

CREATE TABLE IF NOT EXISTS action_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal_id INTEGER NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    success INTEGER,
    error_message TEXT,
    result_data TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (proposal_id) REFERENCES action_proposals(id)
);

CREATE TABLE IF NOT EXISTS workflows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT,
    ticket_id INTEGER,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (ticket_id) REFERENCES tickets(id)
);

CREATE INDEX IF NOT EXISTS idx_action_proposals_status ON action_proposals(status);
CREATE INDEX IF NOT EXISTS idx_action_proposals_ticket ON action_proposals(ticket_id);
CREATE INDEX IF NOT EXISTS idx_action_records_proposal ON action_records(proposal_id);
"""


_PROPOSAL_COLUMNS = [
    ("approved_at", "TEXT"),
    ("approved_by", "TEXT"),
    ("rejected_at", "TEXT"),
    ("rejected_by", "TEXT"),
    ("rejection_reason", "TEXT"),
    ("workflow_id", "INTEGER REFERENCES workflows(id)"),
    ("execution_order", "INTEGER NOT NULL DEFAULT 0"),
    ("depends_on_proposal_id", "INTEGER REFERENCES action_proposals(id)"),
    ("scheduled_at", "TEXT"),
    ("retry_count", "INTEGER NOT NULL DEFAULT 0"),
    ("max_retries", "INTEGER NOT NULL DEFAULT 3"),
    ("next_retry_at", "TEXT"),
    ("last_error", "TEXT"),
    ("expires_at", "TEXT"),
    ("delay_seconds", "REAL NOT NULL DEFAULT 0"),
    ("requires_approval", "INTEGER NOT NULL DEFAULT 1"),
    ("claimed_by", "TEXT"),
    ("lease_expires_at", "TEXT"),
    ("cancel_requested", "INTEGER NOT NULL DEFAULT 0"),
    ("cancel_reason", "TEXT"),
    ("cancelled_by", "TEXT"),
    ("finished_at", "TEXT"),
]
_RECORD_COLUMNS = [("attempt", "INTEGER NOT NULL DEFAULT 1"), ("runner", "TEXT")]
_WORKFLOW_COLUMNS = [
    ("requires_approval", "INTEGER NOT NULL DEFAULT 1"),
    ("approved_at", "TEXT"),
    ("approved_by", "TEXT"),
    ("rejected_at", "TEXT"),
    ("rejected_by", "TEXT"),
    ("rejection_reason", "TEXT"),
    ("proposed_by", "TEXT NOT NULL DEFAULT 'agent'"),
    ("finished_at", "TEXT"),
]

V1_SQL = f"""
DROP TRIGGER IF EXISTS action_proposals_updated_at;
DROP TRIGGER IF EXISTS workflows_updated_at;

CREATE TRIGGER action_proposals_updated_at
AFTER UPDATE OF status ON action_proposals
BEGIN
    UPDATE action_proposals SET updated_at = {_NOW_SQL} WHERE id = NEW.id;
END;

CREATE TRIGGER workflows_updated_at
AFTER UPDATE OF status ON workflows
BEGIN
    UPDATE workflows SET updated_at = {_NOW_SQL} WHERE id = NEW.id;
END;

CREATE INDEX IF NOT EXISTS idx_action_proposals_workflow
ON action_proposals(workflow_id) WHERE workflow_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_action_proposals_scheduled
ON action_proposals(scheduled_at) WHERE scheduled_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_action_proposals_retry
ON action_proposals(next_retry_at) WHERE next_retry_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_action_proposals_lease
ON action_proposals(lease_expires_at) WHERE status = 'executing';
CREATE INDEX IF NOT EXISTS idx_action_proposals_expiry
ON action_proposals(expires_at) WHERE expires_at IS NOT NULL AND approved_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_action_proposals_depends
ON action_proposals(depends_on_proposal_id) WHERE depends_on_proposal_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_action_proposals_finished
ON action_proposals(finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_workflows_status ON workflows(status);
CREATE INDEX IF NOT EXISTS idx_action_records_completed
ON action_records(completed_at) WHERE completed_at IS NOT NULL;

-- At most one open attempt per action: two runners can never run it at once.
CREATE UNIQUE INDEX IF NOT EXISTS idx_action_records_one_open
ON action_records(proposal_id) WHERE completed_at IS NULL;

CREATE TABLE IF NOT EXISTS action_audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal_id INTEGER,
    workflow_id INTEGER,
    event_type TEXT NOT NULL,
    event_data TEXT NOT NULL,
    actor TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_audit_proposal ON action_audit_log(proposal_id);
CREATE INDEX IF NOT EXISTS idx_audit_workflow ON action_audit_log(workflow_id);

CREATE TRIGGER IF NOT EXISTS action_audit_log_no_update
BEFORE UPDATE ON action_audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;

CREATE TRIGGER IF NOT EXISTS action_audit_log_no_delete
BEFORE DELETE ON action_audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;

CREATE TABLE IF NOT EXISTS safety_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    mode TEXT NOT NULL CHECK (mode IN ('observe', 'execute')),
    changed_at TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
"""


# Version 2: the runner's hot queries walk partial indexes in the order they need, so a claim
# or a wake-up computation costs the same with 10 or 100,000 actions waiting.
V2_SQL = """
DROP INDEX IF EXISTS idx_action_proposals_scheduled;
DROP INDEX IF EXISTS idx_action_proposals_retry;

CREATE INDEX IF NOT EXISTS idx_ready_validated
ON action_proposals(COALESCE(scheduled_at, proposed_at))
WHERE status = 'validated' AND (requires_approval = 0 OR approved_at IS NOT NULL);

CREATE INDEX IF NOT EXISTS idx_validated_scheduled
ON action_proposals(scheduled_at) WHERE status = 'validated' AND scheduled_at IS NOT NULL;

CREATE INDEX IF NOT EXISTS idx_retry_due
ON action_proposals(next_retry_at) WHERE status = 'failed' AND next_retry_at IS NOT NULL;
"""


# Version 3: fewer pages written per commit. Indexes on columns that are usually NULL keep
# only the rows that have a value (a lookup by value still uses them); the lease index goes
# (the few executing rows are found through the status index) and so does the unused
# finished_at index; and the updated_at trigger stands aside when the UPDATE already set
# updated_at itself (the runner's transitions do, saving a second write of the row).
V3_SQL = f"""
DROP INDEX IF EXISTS idx_action_proposals_lease;
DROP INDEX IF EXISTS idx_action_proposals_finished;

DROP INDEX IF EXISTS idx_action_proposals_ticket;
CREATE INDEX IF NOT EXISTS idx_action_proposals_ticket
ON action_proposals(ticket_id) WHERE ticket_id IS NOT NULL;

DROP INDEX IF EXISTS idx_audit_workflow;
CREATE INDEX IF NOT EXISTS idx_audit_workflow
ON action_audit_log(workflow_id) WHERE workflow_id IS NOT NULL;

DROP TRIGGER IF EXISTS action_proposals_updated_at;
CREATE TRIGGER action_proposals_updated_at
AFTER UPDATE OF status ON action_proposals
WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE action_proposals SET updated_at = {_NOW_SQL} WHERE id = NEW.id;
END;
"""


# Version 4: a proposal writes no status index. Most actions wait validated (the runner
# finds them through idx_ready_validated, the approvals pane through idx_awaiting_approval,
# which between them hold every validated action), so the status index leaves validated
# actions out. SQLite uses a partial index only for a query that states its condition, so
# every query that reads through idx_action_proposals_state says `status <> 'validated'`.
V4_SQL = """
DROP INDEX IF EXISTS idx_action_proposals_status;

CREATE INDEX IF NOT EXISTS idx_action_proposals_state
ON action_proposals(status) WHERE status <> 'validated';

CREATE INDEX IF NOT EXISTS idx_awaiting_approval
ON action_proposals(workflow_id)
WHERE status IN ('proposed', 'validated') AND requires_approval <> 0 AND approved_at IS NULL;
"""


# Version 5: actions asked to stop (cancel_requested) yet neither executing nor finished,
# which an older version could leave behind and nothing would ever claim or end, are found
# through an index that is empty but for them: the runner's cycle probes it for nothing.
V5_SQL = """
CREATE INDEX IF NOT EXISTS idx_stop_leftover
ON action_proposals(id)
WHERE cancel_requested <> 0
    AND (status IN ('proposed', 'validated') OR (status = 'failed' AND next_retry_at IS NOT NULL));
"""


# Version 6: where an attempt's command runs (host, the command's pid, its process group and
# the start token of the group's leader), written once when the command starts, so the next
# runner can end a lost attempt's processes before the action runs again.
_ATTEMPT_PROCESS_COLUMNS = [
    ("host", "TEXT"),
    ("pid", "INTEGER"),
    ("pgid", "INTEGER"),
    ("process_start", "TEXT"),
]


def _migrate_v6(conn: sqlite3.Connection) -> None:
    for name, decl in _ATTEMPT_PROCESS_COLUMNS:
        _add_column(conn, "action_records", name, decl)


# The seeds' name for the action schema: their tables, then what versions 1 to 5 add on top
# (migrate() adds the new columns in between, so this reads as the whole schema).
ACTIONS_SCHEMA_SQL = _ACTIONS_TABLES_SQL + V1_SQL + V2_SQL + V3_SQL + V4_SQL + V5_SQL


def _migrate_v1(conn: sqlite3.Connection) -> None:
    for statement in split_statements(SCHEMA_SQL + _ACTIONS_TABLES_SQL):
        conn.execute(statement)
    for name, decl in _PROPOSAL_COLUMNS:
        _add_column(conn, "action_proposals", name, decl)
    for name, decl in _RECORD_COLUMNS:
        _add_column(conn, "action_records", name, decl)
    for name, decl in _WORKFLOW_COLUMNS:
        _add_column(conn, "workflows", name, decl)
    for statement in split_statements(V1_SQL):
        conn.execute(statement)
    _normalise_times(
        conn,
        "action_proposals",
        [
            "proposed_at",
            "validated_at",
            "cancelled_at",
            "approved_at",
            "rejected_at",
            "scheduled_at",
            "next_retry_at",
        ],
    )
    _normalise_times(conn, "action_records", ["started_at", "completed_at"])
    _normalise_times(conn, "workflows", ["created_at"])
    _normalise_times(conn, "tickets", ["created_at"])
    # Seed rows never recorded whether approval was needed; a finished row needs nothing.
    conn.execute(
        "UPDATE action_proposals SET finished_at = COALESCE(cancelled_at, proposed_at) "
        "WHERE status IN ('completed', 'cancelled') AND finished_at IS NULL"
    )
    conn.execute(
        "INSERT OR IGNORE INTO safety_state (id, mode, changed_at, changed_by, reason) "
        "VALUES (1, 'execute', ?, 'system', 'initial')",
        (to_db(to_utc(datetime.now())),),
    )


# Version 7: approval policy belongs to the database (every process agrees; changing it is an
# audited command), and every decision records the OS identity of whoever made it beside the
# label they gave (the *_by columns). A NULL setting is not yet seeded: the first executor to
# open the database writes its requested value (or off).
V7_SQL = """
CREATE TABLE IF NOT EXISTS policy (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    approval_mode INTEGER CHECK (approval_mode IN (0, 1)),
    four_eyes INTEGER CHECK (four_eyes IN (0, 1)),
    changed_at TEXT,
    changed_by TEXT
);
INSERT OR IGNORE INTO policy (id) VALUES (1);
"""
_IDENTITY_COLUMNS = {
    "action_proposals": (
        "proposed_identity",
        "approved_identity",
        "rejected_identity",
        "cancelled_identity",
    ),
    "workflows": ("proposed_identity", "approved_identity", "rejected_identity"),
}


def _migrate_v7(conn: sqlite3.Connection) -> None:
    for table, columns in _IDENTITY_COLUMNS.items():
        for name in columns:
            _add_column(conn, table, name, "TEXT")
    for statement in split_statements(V7_SQL):
        conn.execute(statement)


V8_SQL = """
CREATE TABLE IF NOT EXISTS audit_origin (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    origin TEXT NOT NULL
);
"""


def _migrate_v8(conn: sqlite3.Connection) -> None:
    """The database's origin: named in every checkpoint of its audit chain, so a checkpoint
    of one database never vouches for another (see anchor/)."""
    # Here, not at the top: a reading command imports this module for LATEST_VERSION only.
    from operator_core.anchor.chain import new_origin

    for statement in split_statements(V8_SQL):
        conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO audit_origin (id, origin) VALUES (1, ?)", (new_origin(),))


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_v1,
    _script(V2_SQL),
    _script(V3_SQL),
    _script(V4_SQL),
    _script(V5_SQL),
    _migrate_v6,
    _migrate_v7,
    _migrate_v8,
    _migrate_v9,
    _migrate_v10,
    _migrate_v11,
    _script(V12_SQL),
    _migrate_v13,
    _migrate_v14,
]
LATEST_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: str = "") -> int:
    """Bring the database to LATEST_VERSION; each step is one transaction. Returns the version.

    Refuses a database made by a newer version rather than guessing at its shape.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > LATEST_VERSION:
        raise SchemaTooNewError(
            f"database {path} has schema version {version}, newer than this Operator "
            f"understands ({LATEST_VERSION}); upgrade Operator to open it"
        )
    while version < LATEST_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= LATEST_VERSION:
                conn.execute("COMMIT")
                break
            MIGRATIONS[version](conn)
            version += 1
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version
