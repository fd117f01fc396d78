"""PostgreSQL's schema versions: the baseline (SQLite's version 12, in ddl.py), then one
step per later SQLite version, written out for PostgreSQL.

The version lives in a one-row table (PostgreSQL has no ``user_version``). ``migrate`` runs
every missing step in ONE transaction under the write lock (pg/txn.py), so several
hosts starting at once migrate once, the others wait and find it done; DDL is
transactional here, so a failed step leaves nothing behind. A database from a newer version
is refused with one line, as on SQLite; so is a database holding tables of something else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from operator_core.anchor.chain import new_origin
from operator_core.clock import to_db, utcnow
from operator_core.db.pg.ddl import BASELINE_SQL
from operator_core.db.pg.rows import PgConn
from operator_core.db.pg.txn import BEGIN_WRITE
from operator_core.db.schema import MIGRATIONS as SQLITE_MIGRATIONS
from operator_core.errors import DatabaseError, SchemaTooNewError

BASELINE_VERSION = 12

# Version 13 (SQLite's _migrate_v13): approvals bound to a fingerprint of what runs.
V13_SQL = """
ALTER TABLE action_proposals ADD COLUMN fingerprint_sha256 TEXT;
ALTER TABLE action_proposals ADD COLUMN fingerprint TEXT;
ALTER TABLE action_proposals ADD COLUMN approval_voided TEXT;
ALTER TABLE workflows ADD COLUMN approval_voided TEXT;
CREATE INDEX idx_approval_voided ON action_proposals(id)
WHERE approval_voided IS NOT NULL AND approved_at IS NULL AND status = 'validated';
"""

# Version 14 (SQLite's V14_SQL): execution budgets and agents' proposal budgets. The agents'
# index holds every proposer: a text range would follow the database's collation.
V14_SQL = """
ALTER TABLE action_records ADD COLUMN budget_action TEXT;
CREATE INDEX idx_action_records_budget ON action_records(budget_action, started_at)
WHERE budget_action IS NOT NULL;
CREATE TABLE budget_waits (
    action_name TEXT PRIMARY KEY,
    runs INTEGER NOT NULL,
    per_seconds DOUBLE PRECISION NOT NULL,
    used INTEGER NOT NULL,
    next_slot_at TEXT NOT NULL,
    noted_at TEXT NOT NULL
);
CREATE TABLE agent_budgets (
    agent TEXT PRIMARY KEY,
    max_proposals INTEGER CHECK (max_proposals IS NULL OR max_proposals >= 0),
    per_seconds DOUBLE PRECISION CHECK (per_seconds IS NULL OR per_seconds > 0),
    allow TEXT,
    set_at TEXT NOT NULL,
    set_by TEXT NOT NULL
);
CREATE INDEX idx_agent_proposals ON action_proposals(proposed_by, proposed_at);
"""

# Stamp the attempts of the last 31 days (the longest window) with their action's name
# (by primary key).
V14_STAMP_SQL = """
UPDATE action_records SET budget_action = (
    SELECT p.action_name FROM action_proposals p WHERE p.id = action_records.proposal_id)
WHERE started_at > ?
"""


def _migrate_v14(conn: PgConn) -> None:
    conn.raw.execute(V14_SQL)
    conn.execute(V14_STAMP_SQL, (to_db(utcnow() - timedelta(days=31)),))


MIGRATIONS: dict[int, Callable[[PgConn], None]] = {
    13: lambda conn: conn.raw.execute(V13_SQL),
    14: _migrate_v14,
}
"""Version n -> the step from n - 1 to n, for every version after the baseline. Each SQLite
migration after 12 needs its step here (docs/postgres.md, the porting checklist)."""

LATEST_VERSION = BASELINE_VERSION + len(MIGRATIONS)

# Whether the version table exists (a catalog lookup: no error on a new database).
HAS_VERSION_SQL = "SELECT to_regclass('operator_schema') IS NOT NULL"

# The version (the table's one row, by primary key).
VERSION_SQL = "SELECT version FROM operator_schema WHERE id = 1"

# Tables in our schema: a database that has some but no version table is not ours.
TABLES_SQL = (
    "SELECT tablename FROM pg_catalog.pg_tables "
    "WHERE schemaname = current_schema() ORDER BY tablename LIMIT 6"
)

CREATE_VERSION_SQL = """
CREATE TABLE operator_schema (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
)
"""

# Stamp the version (the one row, by primary key).
SET_VERSION_SQL = """
INSERT INTO operator_schema (id, version) VALUES (1, ?)
ON CONFLICT (id) DO UPDATE SET version = excluded.version
"""

# The rows SQLite's migrations seed (versions 1, 7 and 8), and the audit log's counter.
SEED_SAFETY_SQL = """
INSERT INTO safety_state (id, mode, changed_at, changed_by, reason)
VALUES (1, 'execute', ?, 'system', 'initial') ON CONFLICT DO NOTHING
"""
SEED_POLICY_SQL = "INSERT INTO policy (id) VALUES (1) ON CONFLICT DO NOTHING"
SEED_ORIGIN_SQL = "INSERT INTO audit_origin (id, origin) VALUES (1, ?) ON CONFLICT DO NOTHING"
SEED_AUDIT_SEQUENCE_SQL = "INSERT INTO audit_sequence (id, last_id) VALUES (1, 0)"

assert len(SQLITE_MIGRATIONS) >= BASELINE_VERSION, "the baseline is a SQLite version"


def read_version(conn: PgConn) -> int | None:
    """The schema version, or None where there is no Operator schema yet."""
    if not conn.execute(HAS_VERSION_SQL).fetchone()[0]:
        return None
    row = conn.execute(VERSION_SQL).fetchone()
    return int(row[0]) if row else None


def _refuse_newer(version: int, display: str) -> None:
    if version > LATEST_VERSION:
        raise SchemaTooNewError(
            f"database {display} has schema version {version}, newer than this Operator "
            f"understands ({LATEST_VERSION}); upgrade Operator to open it"
        )


def _create(conn: PgConn, display: str) -> None:
    tables = [row[0] for row in conn.execute(TABLES_SQL)]
    if tables:
        raise DatabaseError(
            f"{display} holds tables of something else ({', '.join(tables)}), not an "
            "Operator database; nothing was written to it"
        )
    conn.raw.execute(BASELINE_SQL)  # no parameters: psycopg sends the script as it is
    conn.raw.execute(CREATE_VERSION_SQL)
    conn.execute(SEED_SAFETY_SQL, (to_db(datetime.now(UTC)),))
    conn.execute(SEED_POLICY_SQL)
    conn.execute(SEED_ORIGIN_SQL, (new_origin(),))
    conn.execute(SEED_AUDIT_SEQUENCE_SQL)


def migrate_locked(conn: PgConn, display: str) -> int:
    """``migrate``'s steps inside a write transaction the caller holds (``operator copy``
    migrates and copies in one). Returns the version."""
    # Read again under the lock: another host may have migrated meanwhile.
    version = read_version(conn)
    if version is None:
        _create(conn, display)
        version = BASELINE_VERSION
    _refuse_newer(version, display)
    if version < BASELINE_VERSION:
        raise DatabaseError(f"database {display} has schema version {version}: not ours")
    while version < LATEST_VERSION:
        version += 1
        MIGRATIONS[version](conn)
    conn.execute(SET_VERSION_SQL, (version,))
    return version


def migrate(conn: PgConn, display: str) -> int:
    """Bring the database to LATEST_VERSION (run outside a transaction: this makes its own).
    Returns the version."""
    version = read_version(conn)
    if version is not None:
        _refuse_newer(version, display)
        if version == LATEST_VERSION:
            return version  # the usual case: no lock taken
    conn.raw.execute(BEGIN_WRITE)
    try:
        version = migrate_locked(conn, display)
        conn.raw.execute("COMMIT")
    except BaseException:
        if not conn.raw.broken and conn.in_transaction:
            conn.raw.execute("ROLLBACK")
        raise
    return version


def check_current(conn: PgConn, display: str) -> int:
    """Refuse, with one line, a database that is not an Operator database of this version
    (a command that only reads, or acts on existing work, never migrates)."""
    version = read_version(conn)
    if version is None:
        raise DatabaseError(
            f"no Operator database at {display}; nothing was written to it "
            "(create it with: operator migrate --db URL)"
        )
    _refuse_newer(version, display)
    if version < LATEST_VERSION:
        raise DatabaseError(
            f"database {display} has schema version {version}, older than this Operator's "
            f"({LATEST_VERSION}): upgrade it with: operator migrate --db URL"
        )
    return version
