"""The runner cycle's shared mode on PostgreSQL, and its way out.

On PostgreSQL a runner's cycle (finish, claim, probe: runner_cycle.py) takes the write lock
SHARED, so the cycles of runners on several hosts run beside each other (and beside nothing
else: every other write takes it exclusive). The cycle's own statements are argued safe for
that (docs/postgres.md); a path that is not calls ``require_exclusive``, and the whole
transaction is rolled back and run again under the exclusive lock (pg/connection.py). On
SQLite, and in an exclusive transaction, ``require_exclusive`` does nothing.
"""

from __future__ import annotations

from typing import Any


class NeedsExclusive(BaseException):  # noqa: N818 (a signal, not an error)
    """Raised in a shared-mode cycle by a path that needs one writer at a time. A
    BaseException, so that no ``except Exception`` on the way (savepoints, faults.apart)
    takes it for the action's fault: it must reach the transaction runner."""


def require_exclusive(conn: Any, why: str) -> None:
    """Leave a shared-mode transaction to be run again alone (``why``: for the traceback a
    test or a debugger shows)."""
    if getattr(conn, "shared", False):
        raise NeedsExclusive(why)
