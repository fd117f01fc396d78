"""Reading a test's database directly, beside the engine's own connection: a SQLite file
with sqlite3, or a PostgreSQL database (``PgTarget``) with psycopg, the statement written
for SQLite and translated as the engine translates its own."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PgTarget:
    """A test's PostgreSQL database where a test takes a SQLite file's path: ``str()`` is
    the ``--db`` URL and ``parent`` the test's own directory (for the CLI's state), so a
    test written against ``db`` / ``db_path`` runs unchanged on either backend where it
    reads through these helpers."""

    url: str
    parent: Path

    def __str__(self) -> str:
        return self.url


Db = Path | PgTarget


def pg_rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    import psycopg
    from operator_core.db.dialect import for_postgres
    from operator_core.db.pg.rows import row_factory

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.cursor(row_factory=row_factory).execute(for_postgres(sql), params).fetchall()


def rows(db: Db, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """The rows (read by position or by column name) of one query written for SQLite."""
    if isinstance(db, PgTarget):
        return pg_rows(db.url, sql, params)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def database_of(db: Any) -> Db:
    """Where an ActionDB (or an executor's ``db``) keeps its data, for ``rows``."""
    url = getattr(db, "url", None)
    return PgTarget(url, Path()) if url else Path(db.db_path)
