"""The SQLite migrations from version 9 on: ticket lifecycles and automation definitions
(9), automation executions (10), per-node retry delays (11), runner heartbeats (12),
approval fingerprints (13) and budgets (14). ``db/schema.py`` lists them in order."""

from __future__ import annotations

from operator_core.db.schema_steps import NOW_SQL as _NOW_SQL
from operator_core.db.schema_steps import add_column as _add_column
from operator_core.db.schema_steps import script as _script
from operator_core.db.schema_steps import split_statements

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    import sqlite3

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
