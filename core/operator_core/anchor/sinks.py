"""Where checkpoints go: places the database's writers cannot rewrite.

Each sink's ``publish`` raises on failure (``SinkError`` or the OS's error); the publisher
catches and records it, so no sink can fail or slow an audit append.

The checkpoint file is append-only by construction only if the runner's user cannot rewrite
it: put it in a directory owned by another user (or on a host the runner cannot reach), or
mark it append-only (``chattr +a``, Linux, root only), so a compromised runner can add
checkpoints but not remove any. See docs/audit-anchoring.md.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
from pathlib import Path
from typing import Protocol

from operator_core.anchor.checkpoint import ReadResult, SignedCheckpoint, read_checkpoints

CHECKPOINT_FILE = "checkpoints.log"


class SinkError(Exception):
    """A sink that could not take a checkpoint, with one line saying why."""


class Sink(Protocol):
    name: str

    def publish(self, signed: SignedCheckpoint) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """Appends each checkpoint as one record (the note and a blank line) with O_APPEND and
    fsync; the file is opened per publish, so a rotated or moved file is never written
    behind the operator's back."""

    def __init__(self, directory: Path | str, filename: str = CHECKPOINT_FILE) -> None:
        self.path = Path(directory).expanduser() / filename
        self.name = f"file {self.path}"

    def publish(self, signed: SignedCheckpoint) -> None:
        data = (signed.text() + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            tail = os.pread(fd, 2, max(0, size - 2)) if size else b"\n\n"
            if not tail.endswith(b"\n"):
                # Close off a record a crash cut short, so a reader skips it whole.
                data = b"\n\n" + data
            elif tail != b"\n\n" and size > 1:
                data = b"\n" + data
            # One write: O_APPEND places it at the end whole, even with several writers.
            if os.write(fd, data) != len(data):
                raise SinkError(f"short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> ReadResult:
        return read_file(self.path)

    def close(self) -> None:
        pass


def read_file(path: Path | str) -> ReadResult:
    """Checkpoints in a checkpoint file, streamed; a torn last record is skipped and flagged."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
            return read_checkpoints(f)
    except FileNotFoundError:
        return ReadResult([])


def last_in_file(path: Path | str, tail_bytes: int = 65536) -> SignedCheckpoint | None:
    """The newest checkpoint in a checkpoint file, reading only its tail: what the
    dashboard's header shows, however long the file has grown."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - tail_bytes))
            data = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    if size > tail_bytes:
        # Start at a record boundary: after the first blank line that follows a signature.
        cut = data.find("\n\n\u2014 ")
        start = data.find("\n\n", cut + 3) if cut >= 0 else -1
        data = data[start + 2 :] if start >= 0 else ""
    found = read_checkpoints(data.splitlines(keepends=True)).checkpoints
    return found[-1] if found else None


class SyslogSink:
    """Sends each checkpoint as one syslog line (the note with `` | `` for its newlines) to a
    unix socket path or a ``(host, port)`` UDP address; /dev/log by default. A socket per
    checkpoint: they are seconds apart, and a syslog daemon restarted meanwhile is no
    matter."""

    def __init__(
        self,
        address: str | tuple[str, int] = "/dev/log",
        facility: int = logging.handlers.SysLogHandler.LOG_AUTH,
        tag: str = "operator-audit",
    ) -> None:
        self.address = address
        self.name = f"syslog {address}"
        self.tag = tag
        notice = logging.handlers.SysLogHandler.priority_names["notice"]
        self._prio = (facility << 3) | notice

    def message(self, signed: SignedCheckpoint) -> bytes:
        return f"<{self._prio}>{self.tag}: {signed.one_line()}".encode()

    def publish(self, signed: SignedCheckpoint) -> None:
        data = self.message(signed)
        try:
            if isinstance(self.address, str):
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    sock.connect(self.address)
                    sock.send(data)
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.sendto(data, self.address)
        except OSError as exc:
            raise SinkError(f"syslog {self.address}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        pass


class WebhookSink:
    """POSTs each checkpoint as JSON (its fields and its signed text) to a URL; any answer
    other than 2xx is a failure."""

    def __init__(self, url: str, timeout: float = 5.0, headers: dict[str, str] | None = None):
        # Imported here: every process that opens a database builds its sinks, and most
        # have no webhook (httpx costs about 60 ms to import).
        import httpx

        self.url = url
        self.name = f"webhook {url}"
        self._httpx = httpx
        self._client = httpx.Client(timeout=timeout, headers=headers or {})

    def publish(self, signed: SignedCheckpoint) -> None:
        cp = signed.checkpoint
        payload = {
            "origin": cp.origin,
            "size": cp.size,
            "head": cp.head,
            "time": signed.text().split("\n")[3][5:],
            "checkpoint": signed.text(),
        }
        try:
            response = self._client.post(self.url, json=payload)
        except self._httpx.HTTPError as exc:
            raise SinkError(f"webhook {self.url}: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise SinkError(f"webhook {self.url}: HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()
