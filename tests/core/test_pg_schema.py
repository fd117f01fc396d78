"""PostgreSQL's schema: its migrations, its refusals, and its likeness to SQLite's."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import pytest
from operator_core.db import schema as sqlite_schema
from operator_core.db.pg import schema
from operator_core.db.pg.connection import PgDatabase
from operator_core.db.pg.txn import BEGIN_READ, BEGIN_WRITE
from operator_core.errors import DatabaseError, SchemaTooNewError


def _sql(url: str, sql: str, params: Any = ()) -> list[Any]:
    """Run one statement on its own connection (committed)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


async def _open(url: str, *, migrate: bool = True) -> None:
    db = PgDatabase(url)
    try:
        await db.open(migrate=migrate)
    finally:
        await db.close()


async def test_a_new_database_is_made_at_the_baseline_and_kept(pg_empty_url: str) -> None:
    await _open(pg_empty_url)
    assert _sql(pg_empty_url, "SELECT version FROM operator_schema") == [(schema.LATEST_VERSION,)]
    origin = _sql(pg_empty_url, "SELECT origin FROM audit_origin")
    assert _sql(pg_empty_url, "SELECT mode, changed_by FROM safety_state") == [
        ("execute", "system")
    ]
    assert _sql(pg_empty_url, "SELECT approval_mode FROM policy WHERE id = 1") == [(None,)]
    await _open(pg_empty_url)  # opened again: nothing made twice
    await _open(pg_empty_url, migrate=False)
    assert _sql(pg_empty_url, "SELECT origin FROM audit_origin") == origin
    assert _sql(pg_empty_url, "SELECT count(*) FROM safety_state") == [(1,)]


async def test_a_newer_database_is_refused_in_one_line(pg_url: str) -> None:
    _sql(pg_url, "UPDATE operator_schema SET version = 99")
    for migrate in (True, False):
        with pytest.raises(SchemaTooNewError) as caught:
            await _open(pg_url, migrate=migrate)
        assert "schema version 99, newer than this Operator understands" in str(caught.value)
        assert "\n" not in str(caught.value) and ":***@" in str(caught.value)
    assert _sql(pg_url, "SELECT version FROM operator_schema") == [(99,)]


async def test_an_empty_or_older_database_is_not_opened_without_migrating(
    pg_empty_url: str, pg_url: str
) -> None:
    with pytest.raises(DatabaseError, match="no Operator database at .*operator migrate"):
        await _open(pg_empty_url, migrate=False)
    assert _sql(pg_empty_url, "SELECT to_regclass('operator_schema') IS NULL") == [(True,)]
    _sql(pg_url, "UPDATE operator_schema SET version = 11")
    with pytest.raises(DatabaseError, match="version 11, older than"):
        await _open(pg_url, migrate=False)


async def test_a_database_of_something_else_is_left_alone(pg_empty_url: str) -> None:
    _sql(pg_empty_url, "CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(DatabaseError, match=r"holds tables of something else \(invoices\)"):
        await _open(pg_empty_url)
    tables = _sql(pg_empty_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert tables == [("invoices",)]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE action_audit_log SET actor = 'mallory'",
        "DELETE FROM action_audit_log",
        "TRUNCATE action_audit_log",
    ],
)
def test_the_audit_log_refuses_change(pg_url: str, sql: str) -> None:
    _sql(
        pg_url,
        "INSERT INTO action_audit_log (event_type, event_data, actor, timestamp, prev_hash, hash)"
        " VALUES ('e', '{}', 'a', 't', 'p', 'h')",
    )
    with pytest.raises(psycopg.IntegrityError, match="audit log is append-only"):
        _sql(pg_url, sql)
    assert _sql(pg_url, "SELECT actor FROM action_audit_log") == [("a",)]


def test_the_triggers_do_what_sqlites_do(pg_url: str) -> None:
    db = PgDatabase(pg_url)

    def setup(conn: Any) -> None:
        conn.execute("INSERT INTO tickets (title) VALUES ('t')")
        conn.execute(
            "INSERT INTO automations (name, enabled, scope_type, trigger_event, "
            "current_version, created_at, created_by, updated_at, updated_by) "
            "VALUES ('a', 1, 'global', 'manual', 1, 'x', 'x', 'x', 'x')"
        )
        conn.execute(
            "INSERT INTO automation_versions (automation_id, version, definition, hash, "
            "changed_by, changed_identity, changed_at) VALUES (1, 1, '{}', 'h', 'x', 'x', 'x')"
        )
        conn.execute(
            "INSERT INTO automation_executions (automation_id, automation_name, version, "
            "definition, ticket_id, trigger, status, state, started_by, created_at, "
            "updated_at) VALUES (1, 'a', 1, '{}', 1, 'manual', 'RUNNING', '{}', 'x', 'x', 'x')"
        )
        conn.execute(
            "INSERT INTO action_proposals (action_name, parameters, reason, proposed_at, "
            "updated_at, automation_execution_id) VALUES ('n', '{}', 'r', 'x', 'old', 1)"
        )

    try:
        db.run_txn(BEGIN_WRITE, setup)
        with pytest.raises(psycopg.IntegrityError, match="appended in order"):
            db.run_txn(
                BEGIN_WRITE,
                lambda c: c.execute(
                    "INSERT INTO automation_versions (automation_id, version, definition, "
                    "hash, changed_by, changed_identity, changed_at) "
                    "VALUES (1, 3, '{}', 'h', 'x', 'x', 'x')"
                ),
            )
        # A status change stamps updated_at unless the UPDATE set it; an ended proposal of
        # an execution wakes it at its finish time.
        db.run_txn(
            BEGIN_WRITE,
            lambda c: c.execute(
                "UPDATE action_proposals SET status = 'completed', finished_at = ? WHERE id = 1",
                ("2026-01-01T00:00:00.000000Z",),
            ),
        )
        row = db.run_txn(
            BEGIN_READ,
            lambda c: c.execute(
                "SELECT p.updated_at, e.next_wake_at FROM action_proposals p "
                "JOIN automation_executions e ON e.id = p.automation_execution_id"
            ).fetchone(),
        )
        assert row["updated_at"] != "old" and row["updated_at"].endswith("Z")
        assert len(row["updated_at"]) == len("2026-01-01T00:00:00.000000Z")
        assert row["next_wake_at"] == "2026-01-01T00:00:00.000000Z"
        db.run_txn(
            BEGIN_WRITE,
            lambda c: c.execute(
                "INSERT INTO ticket_events (ticket_id, event_type, facts, actor, created_at) "
                "VALUES (1, 'manual', '{}', 'a', 'x')"
            ),
        )
        with pytest.raises(psycopg.IntegrityError, match="never changed"):
            db.run_txn(BEGIN_WRITE, lambda c: c.execute("UPDATE ticket_events SET facts = 'f'"))
    finally:
        db.close_sync()


def _sqlite_latest() -> dict[str, Any]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for step in sqlite_schema.MIGRATIONS:
        step(conn)
    tables = {
        name: [
            (c[1], bool(c[3]) or bool(c[5]), c[4] is not None)
            for c in conn.execute(f"PRAGMA table_info({name})")
        ]
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    indexes = {
        (name, table, bool(unique), bool(partial))
        for table in tables
        for _, name, unique, _origin, partial in conn.execute(f"PRAGMA index_list({table})")
        if not name.startswith("sqlite_autoindex")
    }
    return {"tables": tables, "indexes": indexes}


def test_the_schema_is_sqlites_at_its_latest_version(pg_url: str) -> None:
    """Same version, same tables, columns in the same order, the same NOT NULLs and
    defaults, and the same named indexes (unique and partial alike): one statement reads
    both engines. A SQLite migration without its PostgreSQL step fails here."""
    assert schema.LATEST_VERSION == sqlite_schema.LATEST_VERSION
    expected = _sqlite_latest()
    # SQLite's agents' index holds a byte range of proposers; PostgreSQL's, every proposer
    # (a text range there follows the database's collation).
    expected["indexes"].remove(("idx_agent_proposals", "action_proposals", False, True))
    expected["indexes"].add(("idx_agent_proposals", "action_proposals", False, False))
    columns = _sql(
        pg_url,
        "SELECT table_name, column_name, is_nullable = 'NO', column_default IS NOT NULL "
        "OR is_identity = 'YES' FROM information_schema.columns "
        "WHERE table_schema = 'public' "
        "AND table_name NOT IN ('operator_schema', 'audit_sequence') "
        "ORDER BY table_name, ordinal_position",
    )
    tables: dict[str, list[tuple[str, bool, bool]]] = {}
    for table, column, notnull, has_default in columns:
        tables.setdefault(table, []).append((column, notnull, has_default))
    # SQLite's INTEGER PRIMARY KEY is NOT NULL and numbered (an identity here).
    for table, cols in expected["tables"].items():
        pk_int = [c for c in cols if c[0] == "id"]
        if pk_int and table not in ("runners",):
            # The audit log's ids are given by a trigger, with no gap (see pg/ddl.py).
            numbered = table not in _ONE_ROW and table != "action_audit_log"
            cols[cols.index(pk_int[0])] = ("id", True, numbered)
    assert tables == expected["tables"]
    indexes = {
        (name, table, unique, partial)
        for name, table, unique, partial in _sql(
            pg_url,
            "SELECT i.relname, t.relname, x.indisunique, x.indpred IS NOT NULL "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
            " WHERE n.nspname = 'public' AND NOT x.indisprimary "
            "AND t.relname NOT IN ('operator_schema', 'audit_sequence') "
            "AND i.relname NOT LIKE '%%_key'",
        )
    }
    assert indexes == expected["indexes"]


_ONE_ROW = ("safety_state", "policy", "audit_origin")
