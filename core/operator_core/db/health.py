"""Is this file a healthy Operator database? Asked before anything writes to it.

SQLite notices corruption only on the pages a statement reads, so on a partly corrupt file
a proposal or an approval that touches healthy pages would go on writing (and writing to a
corrupt file can spread the damage). ``PRAGMA quick_check`` reads every page (its cost is in
docs/performance.md): too slow for every write but fine once per connection, so ActionDB
runs it before a connection's first write (a CLI command's only one, a runner's first
cycle, a dashboard's first action). Reads do not: they change nothing and fail on a
damaged page they meet. The kill switch writes without it: see ``actions/emergency.py``.

Everything here asks through the SQLite connection. Never open the database file itself to
peek at it: closing any descriptor of that file drops every POSIX lock SQLite holds on it
in this process (a second ActionDB of the demo hung its first one when a header check did).
A file that is not SQLite at all is refused by SQLite itself, unchanged.
"""

from __future__ import annotations

from operator_core.errors import DatabaseError, SchemaTooNewError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

RESTORE_HINT = (
    "Restore it from a backup ('operator kill-switch --yes' still stops execution while its "
    "safety and audit tables can be written)"
)


class CorruptDatabaseError(DatabaseError):
    """The file is damaged: SQLite found malformed pages. Nothing was written."""


class ForeignDatabaseError(DatabaseError):
    """The file is a healthy SQLite database of another program. Nothing was written."""


def check_is_operator(conn: sqlite3.Connection, path: Path) -> None:
    """Before the first write of an open (journal mode, migrations): a database that has
    tables, none of them Operator's, belongs to something else. Raises DatabaseError."""
    if conn.execute("PRAGMA user_version").fetchone()[0] != 0:
        return
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if tables and "action_proposals" not in tables:
        shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
        raise ForeignDatabaseError(
            f"{path} is an SQLite database of something else (tables {shown}), not an "
            "Operator database; nothing was written to it"
        )


class NoOperatorDatabaseError(DatabaseError):
    """The file is empty: a command that acts on existing work found none. Nothing was
    written."""


def check_is_current(conn: sqlite3.Connection, path: Path, latest: int, read_only: bool) -> None:
    """For a command that acts on existing work (``check_is_operator`` has passed): the file
    holds an Operator database, not an empty one; for a reading command, one it can read as
    it is (a read never migrates). Raises DatabaseError."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0 and not conn.execute(HAS_PROPOSALS_SQL).fetchone():
        raise NoOperatorDatabaseError(
            f"no Operator database in {path} (the file is empty); nothing was written to it "
            "(a proposal or 'operator run' creates one)"
        )
    if version > latest:
        raise SchemaTooNewError(
            f"database {path} has schema version {version}, newer than this Operator "
            f"understands ({latest}); upgrade Operator to open it"
        )
    if read_only and version < latest:
        raise DatabaseError(
            f"database {path} has schema version {version}, older than this Operator's "
            f"({latest}): a read does not upgrade it, the next command that writes (e.g. "
            "'operator run') does"
        )


# Whether the action table exists (sqlite_master has no index to walk: it is tiny).
HAS_PROPOSALS_SQL = """
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'action_proposals'
"""


def quick_check(conn: sqlite3.Connection, path: Path, table: str | None = None) -> None:
    """Every page of the file (or of one table and its indexes) reads back well formed;
    else CorruptDatabaseError naming SQLite's first complaint."""
    import sqlite3  # here: a reading command imports this module (and no sqlite3 package)

    sql = "PRAGMA quick_check" if table is None else f"PRAGMA quick_check({table})"
    try:
        first = conn.execute(sql).fetchone()
    except sqlite3.DatabaseError as exc:
        raise CorruptDatabaseError(
            f"database {path} is corrupt ({exc}); nothing was written. {RESTORE_HINT}"
        ) from None
    if first is None or first[0] != "ok":
        lines = [ln for ln in str(first[0] if first else "").splitlines() if "***" not in ln]
        problem = lines[0] if lines else "no answer"
        raise CorruptDatabaseError(
            f"database {path} is corrupt (SQLite's quick_check: {problem}); nothing was "
            f"written. {RESTORE_HINT}"
        )


def is_corruption(exc: BaseException) -> bool:
    """An error SQLite raises on a malformed page (as translated by ActionDB, or raw)."""
    if isinstance(exc, CorruptDatabaseError):
        return True
    text = str(exc)
    return "malformed" in text or "corrupt" in text or "not a database" in text
