"""When one action cannot be handled, and when the database cannot be used.

Two kinds of failure meet the runner's transactions. The database's own trouble (locked past
the busy timeout, full, an I/O error, corrupt) is nobody's action's fault: the transaction
is rolled back whole and tried again later (``trouble``). Anything else raised while one
action is finished, advanced, claimed or recovered (a time that cannot be represented, a
value SQLite refuses, a row written by hand that cannot be read) is that action's fault: the
work for it alone is undone (a savepoint), the action is failed for good with the error
recorded, its workflow fails as usual, and the other actions of the batch go on (``apart``).

The runner's transactions (``runner_cycle.py``) build on this module.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from operator_core.clock import to_db
from operator_core.db import audit
from operator_core.db.cancel import fail_workflow
from operator_core.db.records import AuditEntry
from operator_core.db.rows import row_to_proposal
from operator_core.errors import InvalidTransitionError

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal

T = TypeVar("T")

log = logging.getLogger("operator.runner")

# SQLite's primary result codes that say the database cannot be used right now (or at all),
# whatever the values: BUSY, LOCKED, NOMEM, READONLY, INTERRUPT, IOERR, CORRUPT, FULL,
# CANTOPEN, PROTOCOL, NOTADB, and ERROR (a statement SQLite cannot even prepare).
_TROUBLE_CODES = {
    5: "locked",
    6: "locked",
    7: "out of memory",
    8: "read-only",
    9: "interrupted",
    10: "I/O error",
    11: "corrupt",
    13: "full",
    14: "cannot open",
    15: "locked",
    26: "corrupt",
    1: "SQL error",
}

# PostgreSQL's SQLSTATEs (psycopg's ``sqlstate``) that say the same: a class of two
# characters, or one code. A value's fault (22 data, 23 integrity) is none of these.
_TROUBLE_STATES = {
    "08": "connection lost",
    "40": "locked",  # serialization failure, deadlock: the transaction was rolled back
    "53": "full",  # insufficient resources: disk full, out of memory, too many connections
    "55P03": "locked",  # lock_not_available: lock_timeout ran out
    "57": "interrupted",  # query cancelled, server shutting down
    "58": "I/O error",
    "XX": "corrupt",  # internal error, data corrupted, index corrupted
    "42": "SQL error",  # as SQLite's ERROR: a statement the server cannot even prepare
}

# psycopg's errors with no SQLSTATE that say the connection cannot be used.
_CLIENT_TROUBLE = {"OperationalError", "InterfaceError"}

MAX_ERROR_CHARS = 2000
"""An error recorded for an action is cut to this many characters."""


def trouble(exc: BaseException | None) -> str | None:
    """What is wrong with the database, if ``exc`` (or what caused it) says it cannot be
    used now: "locked", "full", "I/O error"...; None if the fault is in the values."""
    while exc is not None:
        if isinstance(exc, MemoryError):
            return "out of memory"
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", None)
            if code is not None:
                return _TROUBLE_CODES.get(code & 0xFF)
            return None  # raised by the sqlite3 module about a value (e.g. a type it cannot bind)
        if hasattr(exc, "sqlstate") and hasattr(exc, "pgconn"):  # psycopg's (PostgreSQL)
            state = exc.sqlstate
            if state is None:  # raised by the client: a connection that failed or closed
                names = {c.__name__ for c in type(exc).__mro__}
                return "connection lost" if names & _CLIENT_TROUBLE else None
            return _TROUBLE_STATES.get(state) or _TROUBLE_STATES.get(state[:2])
        exc = exc.__cause__
    return None


def describe(exc: BaseException) -> str:
    """``Type: message`` as storable text, whatever the exception does (a ``__str__`` that
    raises, lone surrogates, a message of megabytes)."""
    try:
        message = str(exc)
    except Exception:
        message = "(its message could not be read)"
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    text = storable(text)
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + "..."
    return text


def storable(text: str) -> str:
    """``text`` with anything SQLite cannot store as UTF-8 (lone surrogates) escaped."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# Fail an action for good, as held by this runner (by primary key).
_FAIL_HELD_SQL = """
UPDATE action_proposals SET status = 'failed', last_error = :error, next_retry_at = NULL,
    finished_at = :now, claimed_by = NULL, lease_expires_at = NULL
WHERE id = :id AND status = 'executing' AND claimed_by = :held
RETURNING workflow_id, execution_order
"""
# Fail an action for good, whoever holds it, if it has not finished (by primary key).
_FAIL_PENDING_SQL = """
UPDATE action_proposals SET status = 'failed', last_error = :error, next_retry_at = NULL,
    finished_at = :now, claimed_by = NULL, lease_expires_at = NULL
WHERE id = :id AND status IN ('proposed', 'validated', 'executing', 'failed')
    AND finished_at IS NULL
RETURNING workflow_id, execution_order
"""


def undo(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(f"ROLLBACK TO {name}")
    conn.execute(f"RELEASE {name}")


def fail_outright(
    conn: sqlite3.Connection,
    proposal_id: int,
    held_by: str | None,
    error: str,
    now_dt: datetime,
    actor: str = "runner",
) -> bool:
    """Fail an action for good (no retry: its data would fail again), closing its open
    attempt record, and fail its workflow. Reads nothing of the row but plain columns, so it
    works on a row that cannot be read as a proposal. ``held_by``: the runner that must hold
    it (None: any action not yet finished). False if there was nothing to fail."""
    now = to_db(now_dt)
    assert now is not None
    row = conn.execute(
        _FAIL_HELD_SQL if held_by is not None else _FAIL_PENDING_SQL,
        {"error": error, "now": now, "id": proposal_id, "held": held_by},
    ).fetchone()
    if row is None:
        return False
    conn.execute(
        "UPDATE action_records SET completed_at = ?, success = 0, error_message = ? "
        "WHERE proposal_id = ? AND completed_at IS NULL",
        (now, error, proposal_id),
    )
    workflow_id, order = row
    if type(workflow_id) is not int:
        workflow_id = None
    audit.append(
        conn,
        AuditEntry("failed", {"error": error, "retryable": False}, actor, proposal_id, workflow_id),
        now,
    )
    if workflow_id is not None:
        fail_workflow(
            conn, workflow_id, order if type(order) is int else 0, proposal_id, error, actor, now
        )
    log.warning("action %s failed for good: %s", proposal_id, error)
    return True


def apart(
    conn: sqlite3.Connection,
    proposal_id: int,
    held_by: str | None,
    because: str,
    now_dt: datetime,
    fn: Callable[..., T],
    *args: Any,
) -> T | None:
    """``fn(conn, *args)`` for one action, in a savepoint of its own. Stale (another runner
    has it now): undone and skipped. Any other fault that is not the database's trouble:
    undone, and the action failed for good with ``because`` and the error. None then."""
    conn.execute("SAVEPOINT apart")
    try:
        result = fn(conn, *args)
    except InvalidTransitionError:
        undo(conn, "apart")
        return None
    except Exception as exc:
        if trouble(exc) is not None:
            raise
        undo(conn, "apart")
        error = f"{because}{describe(exc)}"
        conn.execute("SAVEPOINT apart")
        try:
            fail_outright(conn, proposal_id, held_by, error, now_dt)
        except Exception as again:
            if trouble(again) is not None:
                raise
            # Not even a plain failure can be written for it: leave it to its lease, and say so.
            undo(conn, "apart")
            log.error(
                "action %s cannot be handled nor failed: %s; then %s",
                proposal_id,
                error,
                describe(again),
            )
            return None
        result = None
    conn.execute("RELEASE apart")
    return result


def readable(
    conn: sqlite3.Connection, rows: Sequence[sqlite3.Row], runner_id: str, now_dt: datetime
) -> list[ActionProposal]:
    """The claimed rows that can be read as proposals; each one that cannot (a row written
    by hand or by an older version, with a time or value out of range) is failed for good."""
    proposals = []
    for row in rows:
        p = apart(
            conn, row[0], runner_id, "the runner cannot read this action: ", now_dt, _read, row
        )
        if p is not None:
            proposals.append(p)
    return proposals


def _read(conn: sqlite3.Connection, row: sqlite3.Row) -> ActionProposal:
    return row_to_proposal(row)
