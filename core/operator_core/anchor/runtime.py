"""The checkpoint publisher of one open database, as ``db.connection.Store`` runs it: one per
process that appends audit events (runner, CLI, dashboard), configured from the environment.

By default checkpoints go to ``checkpoints/checkpoints.log`` in the state directory, beside
the signing key, so every database is anchored without setup; ``OPERATOR_AUDIT_CHECKPOINT_DIR``
moves them (see docs/audit-anchoring.md) or turns the file off. A setting that cannot work
never stops the database: the publisher then reports the error (the dashboard's header turns
red) and every append goes on.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from operator_core.anchor.checkpoint import SignedCheckpoint
from operator_core.anchor.config import DIR_ENV, checkpoint_dir, publisher_from_env
from operator_core.anchor.keys import KEY_NAME, SigningKey
from operator_core.anchor.publisher import Publisher
from operator_core.anchor.sinks import CHECKPOINT_FILE, FileSink, SinkError, last_in_file

log = logging.getLogger(__name__)

# The chain's head (the primary key's last row): what another process appended.
HEAD_SQL = "SELECT id, hash FROM action_audit_log ORDER BY id DESC LIMIT 1"
# How long a closing process waits for its last checkpoint (a CLI command's exit).
CLOSE_TIMEOUT = 0.5


publishing = True
"""False in a process that only reads the log (``audit verify``, ``export``): it must not
publish a checkpoint of the head it was asked to judge."""


class BrokenSink:
    """Stands for sinks a setting made impossible: every publish fails with its reason."""

    def __init__(self, reason: str) -> None:
        self.name = "checkpoints"
        self.reason = reason

    def publish(self, signed: SignedCheckpoint) -> None:
        raise SinkError(self.reason)

    def close(self) -> None:
        pass


def read_head(db_path: Path | str) -> tuple[int, str] | None:
    """The head of the database's chain, read on a short-lived read-only connection."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1.0)
    try:
        row = conn.execute(HEAD_SQL).fetchone()
    finally:
        conn.close()
    return (int(row[0]), str(row[1])) if row else None


def checkpoint_file(env: Mapping[str, str] | None = None) -> Path | None:
    directory = checkpoint_dir(env)
    return None if directory is None else directory / CHECKPOINT_FILE


def _env_with_default_dir() -> dict[str, str]:
    env = dict(os.environ)
    if DIR_ENV not in env:
        directory = checkpoint_dir(env)
        assert directory is not None
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        env[DIR_ENV] = str(directory)
    return env


def start_publisher(
    origin: str | None,
    db_path: Path | str,
    head_source: Callable[[], tuple[int, str] | None] | None = None,
) -> Publisher | None:
    """The started publisher of the database at ``db_path`` whose origin is ``origin``, or
    None when no sink is configured (``OPERATOR_AUDIT_CHECKPOINT_DIR=off`` and no syslog or
    webhook). ``head_source``: how its thread reads the chain's head (default: the file's)."""
    if not publishing:
        return None
    origin = origin or "operator/unknown"
    try:
        env = _env_with_default_dir()
        head_source = head_source or partial(read_head, db_path)
        publisher = publisher_from_env(origin, env, head_source=head_source)
    except Exception as exc:  # noqa: BLE001 - a bad setting is shown, never fatal
        reason = f"checkpoints cannot be written: {exc}"
        log.warning("%s", reason)
        key = SigningKey(KEY_NAME, Ed25519PrivateKey.generate())
        publisher = Publisher(key, origin, [BrokenSink(reason)])
        publisher.report_error(reason)
        publisher.start()
        return publisher
    if publisher is None:
        return None
    published = 0
    path = checkpoint_file(env)
    if path is not None:
        try:
            last = last_in_file(path)
        except OSError:
            last = None
        if last is not None and last.checkpoint.origin == origin:
            published = last.checkpoint.size
    publisher.start(published)
    return publisher


def close_publisher(publisher: Publisher, timeout: float = CLOSE_TIMEOUT) -> None:
    """Publish what is pending (waiting at most about ``timeout`` twice), then stop."""
    try:
        publisher.stop(timeout)
    except Exception:  # noqa: BLE001 - closing must never fail the command
        log.warning("stopping the checkpoint publisher failed", exc_info=True)


@dataclass(frozen=True)
class AnchorStatus:
    """What the dashboard's header shows: the newest checkpoint of this database that any
    process published to the checkpoint file (or this one to any sink), and whether this
    process's last attempt failed."""

    last_at: datetime | None
    size: int
    failing: bool
    error: str | None


# The newest checkpoint in a file, by the file's (mtime, size): the header asks once a
# refresh, and the file's tail is read again only when it changed.
_last_cache: dict[Path, tuple[tuple[int, int], SignedCheckpoint | None]] = {}


def _newest_in(path: Path) -> SignedCheckpoint | None:
    try:
        info = path.stat()
        stamp = (info.st_mtime_ns, info.st_size)
        cached = _last_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        newest = last_in_file(path)
    except OSError:
        return None
    _last_cache[path] = (stamp, newest)
    return newest


def anchor_status(publisher: Publisher | None) -> AnchorStatus | None:
    """None when this process publishes no checkpoints (nothing to show)."""
    if publisher is None:
        return None
    status = publisher.status()
    last_at, size = status.last_success_at, status.last_size
    for sink in publisher.sinks:
        if isinstance(sink, FileSink):
            newest = _newest_in(sink.path)
            if newest is not None and newest.checkpoint.origin == publisher.origin:
                cp = newest.checkpoint
                if last_at is None or cp.time > last_at:
                    last_at, size = cp.time, max(size, cp.size)
    return AnchorStatus(last_at, size, status.failing, status.last_error)
