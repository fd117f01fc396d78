"""The SQLite schema and its versioned migrations.

``SCHEMA_SQL`` and ``ACTIONS_SCHEMA_SQL`` keep the seeds' table shapes (so a database made by
the seeds' code opens); ``MIGRATIONS`` brings any database to the current version, each step
in one transaction, stamped with ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

from operator_core.clock import to_db, to_utc
from operator_core.errors import SchemaTooNewError

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

_NOW_SQL = "(strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')"

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


def split_statements(script: str) -> list[str]:
    """Split a script into statements (triggers keep their inner semicolons)."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if not buf and (not line.strip() or line.strip().startswith("--")):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


def _add_column(conn: sqlite3.Connection, table: str, name: str, decl: str) -> None:
    try:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
    except sqlite3.OperationalError as exc:
        if "duplicate column name" not in str(exc):
            raise


def _normalise_times(conn: sqlite3.Connection, table: str, columns: list[str]) -> None:
    """Rewrite legacy naive timestamps into the fixed-width UTC form.

    The seeds wrote ``datetime.now().isoformat()`` (local time, 'T' separator); SQLite's
    CURRENT_TIMESTAMP writes UTC with a space separator.
    """
    for column in columns:
        rows = conn.execute(
            f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL "
            f"AND {column} NOT LIKE '%Z'"
        ).fetchall()
        for row_id, value in rows:
            text = str(value)
            parsed = datetime.fromisoformat(text.replace(" ", "T"))
            if parsed.tzinfo is None and " " in text:
                parsed = parsed.replace(tzinfo=UTC)
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (to_db(parsed), row_id))


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


# Version 9: tickets get a lifecycle and automations get versioned definitions (issue 22).
# A ticket change records its trigger events (ticket_events) in the same commit, so a runner
# that starts later still sees every one: it claims a batch (claimed_by, a lease until
# claim_expires_at, like an action's claim) and stamps consumed_at in the transaction that
# starts the executions. Apart from those three columns an event is never changed, and
# automation_versions is append-only like the audit log: a rollback appends a copy.
_TICKET_COLUMNS = [
    ("service", "TEXT"),
    ("team", "TEXT"),
    ("assignee", "TEXT"),
    ("metadata", "TEXT NOT NULL DEFAULT '{}'"),
    ("acknowledged_at", "TEXT"),
    ("resolved_at", "TEXT"),
    ("updated_at", "TEXT"),
]
V9_SQL = """
CREATE INDEX IF NOT EXISTS idx_tickets_status ON tickets(status);

-- Open, unacknowledged tickets by age: what an age trigger waits on.
CREATE INDEX IF NOT EXISTS idx_tickets_unacknowledged
ON tickets(created_at) WHERE status = 'open' AND acknowledged_at IS NULL;

CREATE TABLE IF NOT EXISTS ticket_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    event_type TEXT NOT NULL
        CHECK (event_type IN ('incident_created', 'state_changed', 'escalation', 'manual', 'age')),
    from_status TEXT,
    to_status TEXT,
    facts TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at TEXT NOT NULL,
    claimed_by TEXT,
    claim_expires_at TEXT,
    consumed_at TEXT
);

-- The events no runner has consumed yet, oldest first: empty when the runners keep up.
CREATE INDEX IF NOT EXISTS idx_ticket_events_pending
ON ticket_events(id) WHERE consumed_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_ticket_events_ticket ON ticket_events(ticket_id);

CREATE TRIGGER IF NOT EXISTS ticket_events_fixed
BEFORE UPDATE OF id, ticket_id, event_type, from_status, to_status, facts, actor, created_at
ON ticket_events
BEGIN
    SELECT RAISE(ABORT, 'a ticket event is never changed, only claimed and consumed');
END;

CREATE TRIGGER IF NOT EXISTS ticket_events_no_delete
BEFORE DELETE ON ticket_events
BEGIN
    SELECT RAISE(ABORT, 'ticket events are append-only');
END;

CREATE TABLE IF NOT EXISTS automations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    scope_type TEXT NOT NULL CHECK (scope_type IN ('global', 'team')),
    scope_team TEXT,
    trigger_event TEXT NOT NULL,
    current_version INTEGER NOT NULL CHECK (current_version >= 1),
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

-- The enabled automations an event type can start: what the runner reads per event.
CREATE INDEX IF NOT EXISTS idx_automations_trigger
ON automations(trigger_event) WHERE enabled = 1;

CREATE TABLE IF NOT EXISTS automation_versions (
    automation_id INTEGER NOT NULL REFERENCES automations(id),
    version INTEGER NOT NULL CHECK (version >= 1),
    definition TEXT NOT NULL,
    hash TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_identity TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    copied_from INTEGER,
    PRIMARY KEY (automation_id, version)
);

-- Versions are numbered 1, 2, 3... with no gap: two writers cannot both append n+1.
CREATE TRIGGER IF NOT EXISTS automation_versions_in_order
BEFORE INSERT ON automation_versions
WHEN NEW.version <> 1 + COALESCE(
    (SELECT MAX(version) FROM automation_versions WHERE automation_id = NEW.automation_id), 0)
BEGIN
    SELECT RAISE(ABORT, 'automation versions are appended in order');
END;

CREATE TRIGGER IF NOT EXISTS automation_versions_no_update
BEFORE UPDATE ON automation_versions
BEGIN
    SELECT RAISE(ABORT, 'automation history is append-only');
END;

CREATE TRIGGER IF NOT EXISTS automation_versions_no_delete
BEFORE DELETE ON automation_versions
BEGIN
    SELECT RAISE(ABORT, 'automation history is append-only');
END;
"""


def _migrate_v9(conn: sqlite3.Connection) -> None:
    for name, decl in _TICKET_COLUMNS:
        _add_column(conn, "tickets", name, decl)
    for statement in split_statements(V9_SQL):
        conn.execute(statement)


# Version 10: automation executions (issue 22). One row per run of an automation on a
# ticket, with the version and a frozen copy of the definition it started with and the
# walker's state. De-duplication lives here: at most one open execution per automation and
# ticket (an event storm or two runners insert it once: INSERT OR IGNORE), and an age trigger
# fires once per automation and ticket, ever. A proposal an execution made names it; when
# that proposal ends for good, the trigger wakes the execution, whichever path ended it.
V10_SQL = f"""
CREATE TABLE IF NOT EXISTS automation_executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    automation_id INTEGER NOT NULL REFERENCES automations(id),
    automation_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    trigger TEXT NOT NULL,
    trigger_event_id INTEGER REFERENCES ticket_events(id),
    status TEXT NOT NULL
        CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    state TEXT NOT NULL,
    current_node TEXT,
    next_wake_at TEXT,
    started_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT
);

CREATE UNIQUE INDEX IF NOT EXISTS idx_executions_open
ON automation_executions(automation_id, ticket_id) WHERE status IN ('PENDING', 'RUNNING');

CREATE UNIQUE INDEX IF NOT EXISTS idx_executions_age_once
ON automation_executions(automation_id, ticket_id) WHERE trigger = 'age';

-- What the runner must wake: open executions by due time.
CREATE INDEX IF NOT EXISTS idx_executions_wake
ON automation_executions(next_wake_at)
WHERE status IN ('PENDING', 'RUNNING') AND next_wake_at IS NOT NULL;

CREATE INDEX IF NOT EXISTS idx_executions_ticket ON automation_executions(ticket_id);
CREATE INDEX IF NOT EXISTS idx_executions_automation
ON automation_executions(automation_name, id);

CREATE INDEX IF NOT EXISTS idx_action_proposals_execution
ON action_proposals(automation_execution_id) WHERE automation_execution_id IS NOT NULL;

-- A proposal of an execution ended for good (completed, cancelled, failed with no retry
-- waiting): the execution is due now.
CREATE TRIGGER IF NOT EXISTS action_proposals_wake_execution
AFTER UPDATE OF status ON action_proposals
WHEN NEW.automation_execution_id IS NOT NULL
    AND (NEW.status IN ('completed', 'cancelled')
        OR (NEW.status = 'failed' AND NEW.next_retry_at IS NULL))
BEGIN
    UPDATE automation_executions SET next_wake_at = COALESCE(NEW.finished_at, {_NOW_SQL})
    WHERE id = NEW.automation_execution_id AND status IN ('PENDING', 'RUNNING');
END;
"""


def _migrate_v10(conn: sqlite3.Connection) -> None:
    _add_column(conn, "action_proposals", "automation_execution_id", "INTEGER")
    _add_column(conn, "action_proposals", "automation_node", "TEXT")
    for statement in split_statements(V10_SQL):
        conn.execute(statement)


def _migrate_v11(conn: sqlite3.Connection) -> None:
    """Version 11: an automation's proposal keeps its node's first retry delay (the seed's
    per-node ``retry.initialDelayMs``, in seconds), the start of its exponential backoff."""
    _add_column(conn, "action_proposals", "retry_initial_delay_seconds", "REAL")


# Version 12: runners record a heartbeat (one row each, written every few seconds and when
# they stop), so the dashboard can tell "no runner is up" from "nothing is due"; and the
# history of finished work is read newest first, a page at a time, through its own index
# (keyset paging: a page costs the same at 100 or 1,000,000 finished actions).
V12_SQL = """
CREATE TABLE IF NOT EXISTS runners (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    beat_at TEXT NOT NULL,
    stopped_at TEXT
);

CREATE INDEX IF NOT EXISTS idx_runners_live ON runners(beat_at) WHERE stopped_at IS NULL;

CREATE INDEX IF NOT EXISTS idx_history
ON action_proposals(finished_at, id) WHERE finished_at IS NOT NULL;
"""


def _migrate_v13(conn: sqlite3.Connection) -> None:
    """Version 13: an approval is bound to a fingerprint of what will run (its SHA-256 and
    the canonical JSON it was taken over, with the rendered command or request for display);
    when the runner finds it no longer matches, the approval is voided and the reason kept,
    on the action and on its workflow, for the next approver to read."""
    _add_column(conn, "action_proposals", "fingerprint_sha256", "TEXT")
    _add_column(conn, "action_proposals", "fingerprint", "TEXT")
    _add_column(conn, "action_proposals", "approval_voided", "TEXT")
    _add_column(conn, "workflows", "approval_voided", "TEXT")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS idx_approval_voided ON action_proposals(id) "
        "WHERE approval_voided IS NOT NULL AND approved_at IS NULL AND status = 'validated'"
    )


# Version 14: budgets. An attempt of an action with an execution budget is stamped with the
# action's name (budget_action), and only those attempts are in idx_action_records_budget: a
# claim counts an action's starts in its window in a few index entries, and the attempts of
# other actions pay nothing. Attempts of the last 31 days (the longest window) are stamped
# now, so an upgrade in the middle of a window still counts them. ``budget_waits`` holds,
# per action whose budget is spent, when its next slot opens (written by the claim, read by
# the dashboard, the CLI and every runner's wake-up); ``agent_budgets`` holds each agent's
# proposal budget and allow-list, and agents' proposals are counted through an index that
# holds only theirs (labels from 'agent:' up to, not including, 'agent;').
V14_SQL = """
UPDATE action_records SET budget_action = (
    SELECT p.action_name FROM action_proposals p WHERE p.id = action_records.proposal_id)
WHERE started_at > (strftime('%Y-%m-%dT%H:%M:%f', 'now', '-31 days') || '000Z');

CREATE INDEX IF NOT EXISTS idx_action_records_budget ON action_records(budget_action, started_at)
WHERE budget_action IS NOT NULL;

CREATE TABLE IF NOT EXISTS budget_waits (
    action_name TEXT PRIMARY KEY,
    runs INTEGER NOT NULL,
    per_seconds REAL NOT NULL,
    used INTEGER NOT NULL,
    next_slot_at TEXT NOT NULL,
    noted_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS agent_budgets (
    agent TEXT PRIMARY KEY,
    max_proposals INTEGER CHECK (max_proposals IS NULL OR max_proposals >= 0),
    per_seconds REAL CHECK (per_seconds IS NULL OR per_seconds > 0),
    allow TEXT,
    set_at TEXT NOT NULL,
    set_by TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_agent_proposals ON action_proposals(proposed_by, proposed_at)
WHERE proposed_by >= 'agent:' AND proposed_by < 'agent;';
"""


def _migrate_v14(conn: sqlite3.Connection) -> None:
    _add_column(conn, "action_records", "budget_action", "TEXT")
    _script(V14_SQL)(conn)


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    """A migration that runs the statements of ``sql``."""

    def migrate(conn: sqlite3.Connection) -> None:
        for statement in split_statements(sql):
            conn.execute(statement)

    return migrate


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
