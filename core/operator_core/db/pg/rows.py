"""Rows and the connection wrapper an operation sees on PostgreSQL: what ``fn(conn, *args)``
gets where it gets a sqlite3 connection on SQLite.

``Row`` reads like ``sqlite3.Row`` (by position, by column name, ``keys()``), so an
operation's code reads a row the same way on both engines. ``PgConn.execute`` takes the
statement in SQLite's placeholders (or a ``Sql`` pair) and returns psycopg's cursor
(``fetchone``, ``fetchall``, ``rowcount``, iteration).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.adapt import Dumper

from operator_core.db.dialect import for_postgres
from operator_core.db.pg.txn import LOCK_CHAIN

if TYPE_CHECKING:
    from operator_core.db.killfile import KillFile

Params = Sequence[Any] | Mapping[str, Any]


class Row:
    """One result row: ``row[0]``, ``row["name"]``, ``keys()``, iteration, ``len``."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key]]
            except KeyError:
                raise IndexError(f"no such column: {key}") from None
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return self._values == other._values and self._index == other._index
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"Row({ {name: self._values[i] for name, i in self._index.items()}!r})"


def row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    """psycopg's row factory for ``Row``: the column index is built once per result."""
    names = [column.name for column in cursor.description or ()]
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)  # the first column of a name, as sqlite3.Row

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


class BoolAsInteger(Dumper):
    """A Python bool as the integer SQLite stores (flags are 0/1 integers in both schemas)."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


def adapt(raw: psycopg.Connection[Any]) -> None:
    """Make ``raw`` take the values the engine hands sqlite3."""
    raw.adapters.register_dumper(bool, BoolAsInteger)


@lru_cache(maxsize=256)
def _returning_id(sql: str) -> str:
    return sql.rstrip().rstrip(";") + " RETURNING id"


_CHANGING = ("INSERT", "UPDATE", "DELETE", "MERGE")


class PgConn:
    """The connection an operation runs on: one psycopg connection inside one transaction.

    Keeps the attributes the engine's modules read on a sqlite3 connection: ``kill_file``,
    ``audit_types`` (see audit.noting), ``total_changes`` (rows changed since the
    connection opened, as counting_changes reads it) and ``in_transaction``. In a runner
    cycle's shared mode (db/shared.py) ``shared`` is true and ``audit_buffer`` holds the
    events ``audit.flush`` appends at its end, after ``lock_chain``."""

    def __init__(self, raw: psycopg.Connection[Any], kill_file: KillFile | None = None) -> None:
        self.raw = raw
        self.kill_file = kill_file
        self.audit_types: list[str] | None = None
        self.audit_tail: tuple[int, int, str] | None = None
        self.audit_buffer: list[Any] | None = None
        self.shared = False
        self.total_changes = 0

    def lock_chain(self) -> str | None:
        """Wait for the audit chain's lock (held to COMMIT), then read the chain's head
        (None: no event yet), in one round trip."""
        cursor = self.raw.execute(LOCK_CHAIN)
        cursor.nextset()
        row = cursor.fetchone()
        return None if row is None else str(row[0])

    def execute(self, sql: str, params: Params = ()) -> psycopg.Cursor[Any]:
        # Parameters always passed (even none): psycopg then reads ``%%`` as ``%``.
        cursor = self.raw.execute(for_postgres(sql), params)  # type: ignore[arg-type]
        self._count(cursor)
        return cursor

    def insert_id(self, sql: str, params: Params = ()) -> int:
        """dialect.insert_id on PostgreSQL: the INSERT with ``RETURNING id``."""
        cursor = self.raw.execute(_returning_id(for_postgres(sql)), params)  # type: ignore[arg-type]
        self._count(cursor)
        return int(cursor.fetchone()[0])

    def insert_ids(self, sql: str, rows: Sequence[Params]) -> list[int]:
        """One INSERT per row, in order, sent in one pipeline: the rows' ids."""
        if len(rows) < 2:
            return [self.insert_id(sql, row) for row in rows]
        cursor = self.raw.cursor()
        cursor.executemany(_returning_id(for_postgres(sql)), rows, returning=True)  # type: ignore[arg-type]
        ids = [int(cursor.fetchone()[0])]
        while cursor.nextset():
            ids.append(int(cursor.fetchone()[0]))
        self.total_changes += len(ids)
        return ids

    def executemany(self, sql: str, rows: Iterable[Params]) -> psycopg.Cursor[Any]:
        rows = rows if isinstance(rows, list) else list(rows)
        if len(rows) == 1:
            # One statement: psycopg's executemany would enter pipeline mode for it, which
            # costs more than the round trip it saves.
            return self.execute(sql, rows[0])
        cursor = self.raw.cursor()
        cursor.executemany(for_postgres(sql), rows)  # type: ignore[arg-type]
        self._count(cursor)
        return cursor

    def _count(self, cursor: psycopg.Cursor[Any]) -> None:
        status = cursor.statusmessage or ""
        if status.startswith(_CHANGING) and cursor.rowcount > 0:
            self.total_changes += cursor.rowcount

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE
