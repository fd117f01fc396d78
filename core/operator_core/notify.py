"""Cross-process wake-ups: a writer pokes every listener on the same database after a commit.

Each listening process binds a Linux abstract-namespace datagram socket and leaves a marker
file in ``<db>.listeners/`` so writers can find it. A poke carries no data; the listener
re-reads the database. Where this is unavailable, listeners fall back to polling
``PRAGMA data_version``, so a missed poke only delays, never loses, an update.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Protocol


class Waker(Protocol):
    """What a runner or a dashboard waits on: ``Listener`` here, ``PgListener`` on
    PostgreSQL (db/pg/listen.py); ``Store.listener()`` gives the database's own."""

    name: str
    event: asyncio.Event

    def start(self) -> bool: ...

    def stop(self) -> None: ...


def _namespace(db_path: Path) -> str:
    return hashlib.sha1(str(db_path.resolve()).encode()).hexdigest()[:16]


def _listener_dir(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".listeners")


TRUST_AFTER_NS = 50_000_000
"""A listing made this long after the directory's last change saw every listener in it."""


class Notifier:
    """Sends pokes to the listeners of one database."""

    def __init__(self, db_path: Path) -> None:
        self._dir = _listener_dir(db_path)
        self._ns = _namespace(db_path)
        self._sock: socket.socket | None = None
        self.own_name: str | None = None
        self._stamp: int | None = None
        self._listed_at = 0
        self._names: list[str] = []

    def notify(self) -> None:
        try:
            # The directory's mtime changes whenever a listener comes or goes: list it again
            # only then (one stat per commit instead of an open/read/close). Timestamps are
            # as coarse as the kernel's tick (a few milliseconds), so a listing made less than
            # TRUST_AFTER_NS after the change it saw may have missed a listener that arrived
            # within the same tick: list again until one is made later than that.
            stamp = os.stat(self._dir).st_mtime_ns
            if stamp != self._stamp or self._listed_at - stamp < TRUST_AFTER_NS:
                self._listed_at = time.time_ns()
                self._names = os.listdir(self._dir)
                self._stamp = stamp
        except OSError:
            self._stamp = None
            return
        names = self._names
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        for name in names:
            if name == self.own_name:
                continue
            try:
                self._sock.sendto(b"!", f"\0operator-{self._ns}-{name}")
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    (self._dir / name).unlink()  # listener died without cleaning up
                self._stamp = None
            except OSError:
                pass  # queue full: the listener already has a wake-up pending

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Listener:
    """Receives pokes; ``event`` is set whenever another process committed a change."""

    def __init__(self, db_path: Path) -> None:
        self._dir = _listener_dir(db_path)
        self._ns = _namespace(db_path)
        self.name = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.event = asyncio.Event()
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> bool:
        """Bind and register; False if this platform has no abstract sockets."""
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(f"\0operator-{self._ns}-{self.name}")
            sock.setblocking(False)
            self._dir.mkdir(mode=0o700, exist_ok=True)
            (self._dir / self.name).touch(mode=0o600)
        except OSError:
            return False
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._on_readable)
        return True

    def _on_readable(self) -> None:
        assert self._sock is not None
        with contextlib.suppress(OSError):
            while True:
                self._sock.recv(16)
        self.event.set()

    def stop(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        with contextlib.suppress(OSError):
            (self._dir / self.name).unlink()
        with contextlib.suppress(OSError):
            self._dir.rmdir()  # only succeeds once the last listener has gone
