"""The kill switch outside the database: ``<db>.kill``, a small file beside it.

Pulling the kill switch writes this file first, so the emergency stop never waits for
SQLite's write lock: runners stat it before every claim and every poll interval and stop at
once; ``status``, proposing and the dashboard read it as OBSERVE. The database catches up
(OBSERVE, every pending action cancelled, the audit event) in the first write transaction
that sees the file. ``resume`` removes it under the database's write lock, in the
transaction that sets EXECUTE again, so no runner can see the file without the database.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from operator_core.clock import from_db, to_db

KILL_REASON = "kill switch"
PENDING_REASON = "kill switch; the database has not recorded it yet"


class KillNotice(NamedTuple):
    """Who pulled the kill switch, when, and from where (what the file holds)."""

    actor: str
    engaged_at: datetime | None
    reason: str = KILL_REASON
    host: str = ""
    pid: int = 0


def kill_file_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".kill")


class KillFile:
    """The kill file of one database."""

    def __init__(self, db_path: Path) -> None:
        self.path = kill_file_path(db_path)
        self._name = str(self.path)

    def engaged(self) -> bool:
        """One system call, no exception (every cycle of a runner and every proposal ask):
        about a microsecond. A directory we cannot search holds no database we can use."""
        return os.access(self._name, os.F_OK)

    def read(self) -> KillNotice | None:
        """What the file says; None if there is none. A file that cannot be read or parsed
        still means the switch is on: its notice says who is unknown."""
        try:
            data = json.loads(self.path.read_bytes())
            return KillNotice(
                actor=str(data["actor"]),
                engaged_at=from_db(data["engaged_at"]),
                reason=str(data.get("reason") or KILL_REASON),
                host=str(data.get("host", "")),
                pid=int(data.get("pid", 0)),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return KillNotice(actor="unknown (unreadable kill file)", engaged_at=None)

    def engage(self, actor: str, now: datetime) -> tuple[KillNotice, bool]:
        """Write the file, atomically and durably (mode 0600): (its notice, True). If it is
        already there, the switch was already on: (that first pull, False). Raises OSError."""
        import socket  # here: a reading command that only looks for the file needs none

        notice = KillNotice(actor, now, KILL_REASON, socket.gethostname(), os.getpid())
        body = json.dumps(
            {
                "actor": actor,
                "engaged_at": to_db(now),
                "reason": KILL_REASON,
                "host": notice.host,
                "pid": notice.pid,
            }
        ).encode()
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.write(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            # A hard link appears whole or not at all, and never replaces an earlier pull.
            os.link(tmp, self.path)
        except FileExistsError:
            return self.read() or notice, False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._sync_dir()
        return notice, True

    def clear(self) -> bool:
        """Remove the file (resume); False if it was not there. Raises OSError."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return False
        self._sync_dir()
        return True

    def _sync_dir(self) -> None:
        """Make the file's appearance or removal durable (it is a change to the directory)."""
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
