"""Checkpoint sinks against real files, sockets and an HTTP server."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from operator_core.anchor.checkpoint import Checkpoint, SignedCheckpoint, parse, sign
from operator_core.anchor.keys import SigningKey
from operator_core.anchor.sinks import (
    FileSink,
    SinkError,
    SyslogSink,
    WebhookSink,
    last_in_file,
    read_file,
)

from tests.anchor.conftest import Hook

WHEN = datetime(2026, 12, 3, 18, 2, 11, tzinfo=UTC)


def _signed(key: SigningKey, size: int) -> SignedCheckpoint:
    return sign(Checkpoint("operator/t", size, f"{size:064x}", WHEN), key)


def test_file_sink_appends_one_record_per_checkpoint(tmp_path: Path, key: SigningKey) -> None:
    sink = FileSink(tmp_path / "anchors")
    (tmp_path / "anchors").mkdir()
    for n in (1, 2, 3):
        sink.publish(_signed(key, n))
    result = sink.read()
    assert [c.checkpoint.size for c in result.checkpoints] == [1, 2, 3]
    assert all(c.verified_by(key.verifier) for c in result.checkpoints)
    # A crash mid-write leaves a torn record; the next append still reads back.
    with open(sink.path, "a") as f:
        f.write("operator/t\n4\nAAA")
    sink.publish(_signed(key, 5))
    result = read_file(sink.path)
    assert [c.checkpoint.size for c in result.checkpoints] == [1, 2, 3, 5]
    assert result.torn == 1 and result.malformed == 0


def test_file_sink_in_a_missing_directory_raises(tmp_path: Path, key: SigningKey) -> None:
    with pytest.raises(FileNotFoundError):
        FileSink(tmp_path / "nowhere").publish(_signed(key, 1))


def test_syslog_sink_to_a_unix_socket(tmp_path: Path, key: SigningKey) -> None:
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        SyslogSink(path).publish(_signed(key, 7))
        data = server.recv(65536).decode()
    assert data.startswith("<37>operator-audit: operator/t | 7 | ")
    assert parse(data.split(": ", 1)[1]).verified_by(key.verifier)


def test_syslog_sink_over_udp(key: SigningKey) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        SyslogSink(server.getsockname()).publish(_signed(key, 8))
        data = server.recv(65536).decode()
    assert parse(data.split(": ", 1)[1]) == _signed(key, 8)


def test_syslog_sink_without_a_listener_raises_one_line(tmp_path: Path, key: SigningKey) -> None:
    with pytest.raises(SinkError, match=r"^syslog .*nope.sock: "):
        SyslogSink(str(tmp_path / "nope.sock")).publish(_signed(key, 1))


def test_webhook_sink_posts_the_signed_checkpoint(hook: Hook, key: SigningKey) -> None:
    sink = WebhookSink(hook.url)
    sink.publish(_signed(key, 9))
    body = hook.bodies[0]
    assert body["origin"] == "operator/t" and body["size"] == 9
    assert body["time"] == "2026-12-03T18:02:11.000Z"
    assert parse(body["checkpoint"]).verified_by(key.verifier)
    hook.status = 503
    with pytest.raises(SinkError, match="HTTP 503"):
        sink.publish(_signed(key, 10))
    sink.close()


def test_webhook_sink_unreachable_raises_one_line(key: SigningKey) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SinkError, match="ConnectError"):
        WebhookSink(f"http://127.0.0.1:{port}/", timeout=2).publish(_signed(key, 1))


def test_a_record_torn_anywhere_never_swallows_the_next(tmp_path: Path, key: SigningKey) -> None:
    third = (_signed(key, 3).text() + "\n").encode()
    # Cut anywhere inside the signed note (once its signature is whole, so is the record).
    for cut in range(1, len(third) - 2):
        sink = FileSink(tmp_path, f"cut{cut}.log")
        sink.publish(_signed(key, 1))
        with open(sink.path, "ab") as f:
            f.write(third[:cut])
        sink.publish(_signed(key, 4))
        result = sink.read()
        assert [c.checkpoint.size for c in result.checkpoints] == [1, 4], cut


def test_last_checkpoint_is_read_from_the_tail_of_a_long_file(
    tmp_path: Path, key: SigningKey
) -> None:
    sink = FileSink(tmp_path)
    assert last_in_file(sink.path) is None
    for n in range(1, 400):
        sink.publish(_signed(key, n))
    assert sink.path.stat().st_size > 4096
    last = last_in_file(sink.path, tail_bytes=4096)
    assert last is not None and last.checkpoint.size == 399
    assert last.verified_by(key.verifier)
    with open(sink.path, "a") as f:
        f.write("operator/t\n400\n")  # torn
    last = last_in_file(sink.path, tail_bytes=1000)
    assert last is not None and last.checkpoint.size == 399
