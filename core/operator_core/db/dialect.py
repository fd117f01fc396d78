"""SQL for two engines: one text where SQLite and PostgreSQL agree, a ``Sql`` pair where not.

Most statements are standard SQL both engines run (COALESCE, RETURNING, ON CONFLICT ... DO
NOTHING, partial-index conditions): they stay one text, written with SQLite's placeholders
(``?`` and ``:name``), and ``for_postgres`` turns them into psycopg's (``%s`` and
``%(name)s``, a literal ``%`` doubled), leaving string literals, quoted names and comments
alone. The translation is cached: each statement is a module constant, translated once.
Where the engines differ (``strftime``, ``sqlite_sequence``...) a module writes both out
as ``Sql(sqlite=..., postgres=...)``: a ``str`` whose value is the SQLite text, so sqlite3
runs it unchanged; its ``postgres`` text is written in psycopg's placeholders already and
is used as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

# SQLite's index hints: PostgreSQL has none (its planner picks), so they are dropped.
_HINT_RE = re.compile(r"(?i)(?:INDEXED\s+BY\s+[A-Za-z_][A-Za-z0-9_]*|NOT\s+INDEXED)\b")
# ``x IS ?`` / ``x IS NOT ?``: SQLite's null-safe comparison with a value; PostgreSQL takes
# IS only before NULL, TRUE or FALSE, and says IS [NOT] DISTINCT FROM.
_IS_NOT_RE = re.compile(r"(?i)IS\s+NOT\s+(?=\?|:[A-Za-z_])")
_IS_RE = re.compile(r"(?i)IS\s+(?=\?|:[A-Za-z_])")
# ``instr(a, b)``: PostgreSQL's ``strpos(a, b)`` is the same function (1-based, 0 if absent,
# NULL if either is NULL).
_INSTR_RE = re.compile(r"(?i)instr(?=\s*\()")


class Sql(str):
    """One statement written out per engine: the string IS the SQLite text (so a module
    hands it to sqlite3 as any other constant, at no cost on SQLite's path), and
    ``postgres`` holds PostgreSQL's."""

    __slots__ = ("postgres",)
    postgres: str

    def __new__(cls, sqlite: str, postgres: str) -> Sql:
        self = super().__new__(cls, sqlite)
        self.postgres = postgres
        return self

    @property
    def sqlite(self) -> str:
        return str.__str__(self)


def insert_id(conn: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
    """Run an INSERT of one row and return the row's id: sqlite3's ``lastrowid``, or, on a
    connection that has its own ``insert_id`` (PostgreSQL's, which adds ``RETURNING id``),
    that. One line of logic for both engines where a module needs the new id."""
    own = getattr(conn, "insert_id", None)
    if own is not None:
        return int(own(sql, params))
    row_id = conn.execute(sql, params).lastrowid
    assert row_id is not None
    return int(row_id)


def for_sqlite(sql: str) -> str:
    return sql.sqlite if type(sql) is Sql else sql


def for_postgres(sql: str) -> str:
    """The statement psycopg runs: the ``postgres`` text of a pair, else the translation."""
    return sql.postgres if type(sql) is Sql else translate(sql)


def _name_end(sql: str, start: int) -> int:
    end = start
    while end < len(sql) and (sql[end].isalnum() or sql[end] == "_"):
        end += 1
    return end


def _rewrite(sql: str, i: int) -> tuple[str, int] | None:
    """What replaces the SQLite-only phrase starting at ``i``, and where it ends; or None."""
    if match := _HINT_RE.match(sql, i):
        return "", match.end()
    if match := _IS_NOT_RE.match(sql, i):
        return "IS DISTINCT FROM ", match.end()
    if match := _IS_RE.match(sql, i):
        return "IS NOT DISTINCT FROM ", match.end()
    if match := _INSTR_RE.match(sql, i):
        return "strpos", match.end()
    return None


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """SQLite placeholders to psycopg's, index hints (``INDEXED BY``) dropped, ``IS [NOT]
    ?`` spelled ``IS [NOT] DISTINCT FROM`` and ``instr(`` spelled ``strpos(``; ValueError
    if the statement mixes ``?`` and ``:name`` (psycopg cannot) or leaves a literal,
    quoted name or comment open."""
    out: list[str] = []
    positional = named = False
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":  # a string literal or a quoted name: to its closing quote ('' inside)
            end = sql.find(ch, i + 1)
            while end != -1 and end + 1 < n and sql[end + 1] == ch:
                end = sql.find(ch, end + 2)
            if end == -1:
                raise ValueError(f"unterminated {ch} in SQL: {sql!r}")
            out.append(sql[i : end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end == -1:
                raise ValueError(f"unterminated comment in SQL: {sql!r}")
            out.append(sql[i : end + 2].replace("%", "%%"))
            i = end + 2
        elif (
            (ch in "INin")
            and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_"))
            and (rewrite := _rewrite(sql, i))
        ):
            out.append(rewrite[0])
            i = rewrite[1]
        elif ch == "?":
            positional = True
            out.append("%s")
            i += 1
        elif ch == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            if i > 0 and sql[i - 1] == ":":
                raise ValueError(f"'::' is not SQLite: {sql!r}")
            end = _name_end(sql, i + 1)
            named = True
            out.append(f"%({sql[i + 1 : end]})s")
            i = end
        elif ch == "%":
            out.append("%%")
            i += 1
        else:
            out.append(ch)
            i += 1
    if positional and named:
        raise ValueError(f"SQL mixes ? and :name placeholders: {sql!r}")
    return "".join(out)
