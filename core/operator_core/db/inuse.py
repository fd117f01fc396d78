"""Who has a database open: a shared ``flock`` on ``<db>.lock`` for as long as an ActionDB is
open, so a process about to delete the database (``operator demo`` resetting its file) can
tell that another still uses it and refuse.

SQLite cannot say who has a file open, and the lock cannot be taken on the database file
itself: closing any descriptor of that file drops every POSIX lock SQLite holds on it in the
process. The lock file is never deleted (a lock on a deleted file protects nothing).
"""

from __future__ import annotations

import fcntl
import os

from operator_core.errors import DatabaseError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager
    from pathlib import Path


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def hold_shared(db_path: Path) -> int | None:
    """Mark the database in use by this process until ``release``. None where the lock file
    cannot be made (a read-only directory): that process is then not seen, nothing fails."""
    try:
        # The name as text: ``lock_path`` without pathlib, for the CLI's fast path.
        fd = os.open(os.fspath(db_path) + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        # Blocks only while a reset holds it exclusively: the few milliseconds of a wipe.
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def exclusive(db_path: Path) -> AbstractContextManager[None]:
    """Hold the database alone (no other Operator process has it open), or raise
    DatabaseError at once."""
    import contextlib  # here: every reading command imports this module, a reset calls this

    return contextlib.contextmanager(_held_alone)(db_path)


def _held_alone(db_path: Path) -> Iterator[None]:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(db_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseError(
                f"{db_path} is open in another Operator process (a demo, runner or "
                "dashboard): stop it first, or give this one its own file with --db PATH"
            ) from None
        yield
    finally:
        os.close(fd)
