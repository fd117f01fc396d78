"""A few migrated PostgreSQL databases reused across a test session, each reset to the state
of a fresh copy of the template between tests.

Creating a database from a template costs 0.26-0.46 s on this machine; with the core, CLI
and runner tests on PostgreSQL too that is minutes per run. A reset costs a small fraction
of it (figures in docs/postgres.md): end the test's leftover connections, then in one
transaction under ``session_replication_role = replica`` (the append-only triggers and
the foreign keys' do not fire) empty every table, restart every sequence, and put back
the template's own rows (the one-row tables) and sequence positions. A database whose
schema the test changed (a dropped table, a disabled trigger) is dropped, not reused:
tests/core/test_pg_pool.py checks that a reset database equals a fresh copy, table by table
and sequence by sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# Every user table of the public schema, in a stable order (pg_class's namespace index).
TABLES_SQL = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
ORDER BY c.relname
"""

# The sequences and where each stands (pg_sequences reads each sequence's own page).
SEQUENCES_SQL = """
SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'
ORDER BY sequencename
"""

# The schema's shape in one hash: columns, indexes, constraints, triggers (with whether
# each is enabled) and functions; a test that changed any of it leaves a database that a
# reset would not bring back (pg_class/pg_attribute/pg_trigger/pg_proc by namespace).
FINGERPRINT_SQL = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(c.relname || '.' || a.attname || ':' || a.atttypid::text || ':'
                     || a.attnotnull::text || ':' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''),
                     ',' ORDER BY c.relname, a.attnum)
   FROM pg_class c
   JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'public'::regnamespace),
  (SELECT string_agg(pg_get_indexdef(i.indexrelid), ',' ORDER BY c.relname)
   FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE c.relnamespace = 'public'::regnamespace),
  (SELECT string_agg(conname || pg_get_constraintdef(oid), ','
                     ORDER BY conname, pg_get_constraintdef(oid))
   FROM pg_constraint WHERE connamespace = 'public'::regnamespace),
  (SELECT string_agg(t.tgname || ':' || t.tgenabled::text, ',' ORDER BY c.relname, t.tgname)
   FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal),
  (SELECT string_agg(p.proname || md5(p.prosrc), ',' ORDER BY p.proname, p.oid)
   FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace)
))
"""

# Other sessions on the database: a test's leaked connection or runner (as DROP ... FORCE).
TERMINATE_SQL = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


@dataclass(frozen=True)
class Snapshot:
    """What a fresh copy of the template holds: its tables, their rows, its sequences."""

    fingerprint: str
    tables: tuple[str, ...]
    rows: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]
    sequences: dict[str, int | None]


def snapshot(conn: psycopg.Connection[Any]) -> Snapshot:
    """Read a database's fingerprint, table rows (in primary-key order) and sequences."""
    tables = tuple(r[0] for r in conn.execute(TABLES_SQL))
    rows: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}
    for table in tables:
        cur = conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(table)))
        names = tuple(d.name for d in cur.description or ())
        rows[table] = (names, cur.fetchall())
    sequences = {r[0]: r[1] for r in conn.execute(SEQUENCES_SQL)}
    fingerprint = conn.execute(FINGERPRINT_SQL).fetchone()
    assert fingerprint is not None
    return Snapshot(fingerprint[0], tables, rows, sequences)


class PgPool:
    """Databases copied from ``template`` once and reset between tests.

    ``create(template)`` and ``drop(name)`` are the server's (tests/pg.py); ``url(name)``
    reaches a database."""

    def __init__(
        self,
        template: str,
        url: Callable[[str], str],
        create: Callable[[str], str],
        drop: Callable[[str], None],
    ) -> None:
        self.template = template
        self._url = url
        self._create = create
        self._drop = drop
        self._free: list[str] = []
        self._conns: dict[str, psycopg.Connection[Any]] = {}
        with psycopg.connect(url(template), autocommit=True) as conn:
            self.fresh = snapshot(conn)
        self._reset_sql = self._build_reset()
        self.created = 0
        self.reset_count = 0

    def _build_reset(self) -> sql.Composable:
        # DELETE, not TRUNCATE: on these few rows it is 60x cheaper (TRUNCATE makes every
        # table a new file); setval(…, false), not ALTER SEQUENCE RESTART (DDL, 5x slower),
        # leaves a sequence as a fresh one: its next value is its start.
        statements: list[sql.Composable] = [
            sql.SQL("SET LOCAL session_replication_role = replica"),
            sql.SQL("SET LOCAL lock_timeout = '5s'"),
        ]
        statements += [
            sql.SQL("DELETE FROM {}").format(sql.Identifier(t)) for t in self.fresh.tables
        ]
        for seq, last in self.fresh.sequences.items():
            position = (
                sql.SQL("{}, true").format(sql.Literal(last)) if last else sql.SQL("1, false")
            )
            statements.append(sql.SQL("SELECT setval({}, {})").format(sql.Literal(seq), position))
        for table, (names, rows) in self.fresh.rows.items():
            for row in rows:
                statements.append(
                    sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                        sql.Identifier(table),
                        sql.SQL(", ").join(sql.Identifier(n) for n in names),
                        sql.SQL(", ").join(sql.Literal(v) for v in row),
                    )
                )
        return sql.SQL("; ").join(statements)

    def acquire(self) -> str:
        """A database in the state of a fresh copy of the template: its name."""
        if self._free:
            return self._free.pop()
        self.created += 1
        return self._create(self.template)

    def release(self, name: str) -> None:
        """Reset ``name`` for the next test, or drop it when it cannot be reset."""
        try:
            self.reset(name)
        except psycopg.Error:
            self._forget(name)
            self._drop(name)
            return
        self._free.append(name)

    def reset(self, name: str) -> None:
        conn = self._conns.get(name)
        if conn is None or conn.closed:
            conn = self._conns[name] = psycopg.connect(self._url(name), autocommit=True)
        try:
            conn.execute(TERMINATE_SQL)
            row = conn.execute(FINGERPRINT_SQL).fetchone()
            if row is None or row[0] != self.fresh.fingerprint:
                raise psycopg.ProgrammingError("the test changed the schema")
            with conn.transaction():
                conn.execute(self._reset_sql)  # one round trip
        except psycopg.Error:
            self._forget(name)
            raise
        self.reset_count += 1

    def _forget(self, name: str) -> None:
        conn = self._conns.pop(name, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for name in list(self._conns):
            self._forget(name)
        for name in self._free:
            self._drop(name)
        self._free.clear()
