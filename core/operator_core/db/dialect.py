"""SQL for two engines: one text where SQLite and PostgreSQL agree, a ``Sql`` pair where not.

Most statements are standard SQL both engines run (COALESCE, RETURNING, ON CONFLICT ... DO
NOTHING, partial-index conditions): they stay one text, written with SQLite's placeholders
(``?`` and ``:name``), and ``for_postgres`` turns them into psycopg's (``%s`` and
``%(name)s``, a literal ``%`` doubled), leaving string literals, quoted names and comments
alone. The translation is cached: each statement is a module constant, translated once.
Where the engines differ (``INSERT OR IGNORE``, ``strftime``, ``sqlite_sequence``...) a
module writes both out as ``Sql(sqlite=..., postgres=...)``; its ``postgres`` text is
written in psycopg's placeholders already and is used as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Sql:
    """One statement written out per engine."""

    sqlite: str
    postgres: str


def for_sqlite(sql: str | Sql) -> str:
    return sql.sqlite if isinstance(sql, Sql) else sql


def for_postgres(sql: str | Sql) -> str:
    """The statement psycopg runs: the ``postgres`` text of a pair, else the translation."""
    return sql.postgres if isinstance(sql, Sql) else translate(sql)


def _name_end(sql: str, start: int) -> int:
    end = start
    while end < len(sql) and (sql[end].isalnum() or sql[end] == "_"):
        end += 1
    return end


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """SQLite placeholders to psycopg's; ValueError if the statement mixes ``?`` and
    ``:name`` (psycopg cannot) or leaves a literal, quoted name or comment open."""
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
