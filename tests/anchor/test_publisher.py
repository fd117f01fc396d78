"""The publisher: when it checkpoints, that sinks failing never reach the writer, and that
what it publishes verifies the real chain."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from operator_core.anchor.checkpoint import SignedCheckpoint
from operator_core.anchor.keys import SigningKey
from operator_core.anchor.publisher import Publisher
from operator_core.anchor.sinks import FileSink, WebhookSink

from tests.anchor.chain import ORIGIN, append, head, open_db, stamp, verify
from tests.anchor.conftest import Hook


class Recorder:
    name = "recorder"

    def __init__(self, delay: float = 0.0) -> None:
        self.seen: list[SignedCheckpoint] = []
        self.delay = delay
        self.changed = threading.Condition()

    def publish(self, signed: SignedCheckpoint) -> None:
        time.sleep(self.delay)
        with self.changed:
            self.seen.append(signed)
            self.changed.notify_all()

    def close(self) -> None:
        pass

    def sizes(self) -> list[int]:
        return [s.checkpoint.size for s in self.seen]

    def wait_for(self, size: int, timeout: float = 10.0) -> float:
        """Seconds until a checkpoint of ``size`` arrived."""
        started = time.monotonic()
        with self.changed:
            assert self.changed.wait_for(lambda: size in self.sizes(), timeout), self.sizes()
        return time.monotonic() - started


def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_checkpoints_every_n_events(key: SigningKey) -> None:
    sink = Recorder()
    pub = Publisher(key, ORIGIN, [sink], every_events=10, every_seconds=60)
    pub.start()
    for seq in range(1, 10):
        pub.observe(seq, f"{seq:064x}")
    time.sleep(0.2)
    assert sink.sizes() == []
    pub.observe(10, f"{10:064x}")
    sink.wait_for(10)
    pub.stop()
    assert sink.sizes() == [10]


def test_checkpoints_within_seconds_while_events_flow(key: SigningKey) -> None:
    sink = Recorder()
    pub = Publisher(key, ORIGIN, [sink], every_events=1000, every_seconds=0.3)
    pub.start()
    pub.observe(3, f"{3:064x}")
    assert 0.1 < sink.wait_for(3) < 5
    pub.stop()


def test_approval_kill_switch_and_resume_checkpoint_at_once(key: SigningKey) -> None:
    sink = Recorder()
    pub = Publisher(key, ORIGIN, [sink], every_events=1000, every_seconds=60)
    pub.start()
    for seq, kind in ((4, "approved"), (5, "kill_switch"), (6, "safety_mode_changed")):
        pub.observe(seq, f"{seq:064x}", [kind])
        assert sink.wait_for(seq) < 5
    pub.stop()


def test_a_failing_sink_is_shown_and_retried_never_raised(key: SigningKey, hook: Hook) -> None:
    hook.status = 503
    sink = Recorder()
    pub = Publisher(key, ORIGIN, [WebhookSink(hook.url), sink], every_events=1, every_seconds=0.2)
    pub.start()
    pub.observe(1, f"{1:064x}", ["approved"])
    sink.wait_for(1)
    until(lambda: pub.status().failing)
    status = pub.status()
    assert status.last_error == f"webhook {hook.url}: HTTP 503"
    assert status.last_success_at is not None and status.last_size == 1
    hook.status = 200
    until(lambda: not pub.status().failing)
    assert hook.bodies[-1]["size"] == 1
    assert pub.status().last_error == f"webhook {hook.url}: HTTP 503"  # kept for the record
    pub.stop()


def test_observe_does_not_wait_for_a_hung_sink(key: SigningKey) -> None:
    sink = Recorder(delay=1.0)
    pub = Publisher(key, ORIGIN, [sink], every_events=1, every_seconds=0.1)
    pub.start()
    started = time.perf_counter()
    for seq in range(1, 20_001):
        pub.observe(seq, "ab" * 32, ["approved"] if seq % 100 == 0 else ())
    assert time.perf_counter() - started < 1.0
    pub.stop(timeout=5)
    # Observations coalesced: a handful of checkpoints, the last one the newest head.
    assert len(sink.seen) <= 4 and sink.sizes()[-1] == 20_000


def test_published_checkpoints_verify_the_real_chain(tmp_path: Path, key: SigningKey) -> None:
    conn = open_db(tmp_path / "operator.db")
    (tmp_path / "anchors").mkdir()
    sink = FileSink(tmp_path / "anchors")
    pub = Publisher(key, ORIGIN, [sink], every_events=7, every_seconds=0.1, min_interval=0)
    pub.start()
    for i in range(50):
        kind = "approved" if i % 13 == 0 else "note"
        # The publisher dates checkpoints by the real clock, so the events must be too:
        # a fixed date passes until the day it lies before the checkpoints' time.
        append(conn, kind, {"i": i}, when=stamp(datetime.now(UTC)))
        pub.observe(*head(conn), [kind])
    assert pub.flush()
    pub.stop()
    cps = sink.read().checkpoints
    assert len(cps) >= 3 and cps[-1].checkpoint.size == 50
    report = verify(conn, key, cps)
    assert report.ok and report.anchored_to == 50


def test_head_source_brings_other_processes_appends(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "operator.db"
    conn = open_db(path)

    def read_head() -> tuple[int, str]:
        with closing(sqlite3.connect(path)) as reader:
            return head(reader)

    sink = Recorder()
    pub = Publisher(
        key, ORIGIN, [sink], every_events=1000, every_seconds=0.2, head_source=read_head
    )
    pub.start()
    for _ in range(3):
        append(conn)
    sink.wait_for(3)
    pub.stop()
