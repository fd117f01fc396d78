"""Helpers of the SQLite migrations (db/schema.py, db/schema_later.py): splitting a script
into statements, adding a column once, and normalising the seeds' timestamps."""

from __future__ import annotations

from operator_core.clock import UTC, datetime, to_db

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

NOW_SQL = "(strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')"
"""SQLite's now in the engine's fixed-width UTC form (the clock's ``to_db``)."""


def split_statements(script: str) -> list[str]:
    """Split a script into statements (triggers keep their inner semicolons)."""
    import sqlite3  # here: a reading command imports this module (and no sqlite3 package)

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


def add_column(conn: sqlite3.Connection, table: str, name: str, decl: str) -> None:
    import sqlite3

    try:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
    except sqlite3.OperationalError as exc:
        if "duplicate column name" not in str(exc):
            raise


def normalise_times(conn: sqlite3.Connection, table: str, columns: list[str]) -> None:
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


def script(sql: str) -> Callable[[sqlite3.Connection], None]:
    """A migration that runs the statements of ``sql``."""

    def migrate(conn: sqlite3.Connection) -> None:
        for statement in split_statements(sql):
            conn.execute(statement)

    return migrate
