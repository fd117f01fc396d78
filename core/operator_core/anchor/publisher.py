"""When to checkpoint, off the audit writer's path.

The writer calls ``Publisher.observe(seq, head, event_types)`` after its transaction commits:
it records the newest head under a lock and may set an event, nothing else (no I/O, no
signing, never raises). A daemon thread wakes on that event or its timer, signs a checkpoint
of the newest head and hands it to every sink. Observations coalesce (only the newest head
matters: it covers every event before it), so a burst of appends costs one checkpoint and no
queue can grow while a sink hangs.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from operator_core.anchor.checkpoint import Checkpoint, sign
from operator_core.anchor.keys import SigningKey
from operator_core.anchor.sinks import Sink

log = logging.getLogger(__name__)

# Checkpointed at once: an approval, the kill switch and resume (a safety mode change) are
# what a postmortem asks about first, so they are anchored before anything can rewrite them.
URGENT_EVENTS = frozenset({"approved", "workflow_approved", "kill_switch", "safety_mode_changed"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PublishStatus:
    """What the dashboard shows: the last checkpoint that reached a sink, and whether the
    last attempt failed (``failing``), with the error of each sink that failed."""

    last_success_at: datetime | None
    last_size: int
    last_error: str | None
    last_error_at: datetime | None
    failing: bool
    errors: tuple[str, ...] = ()


class Publisher:
    """Checkpoints every ``every_events`` events, within ``every_seconds`` of any event not
    yet covered, and at once after an URGENT_EVENTS event (within ``min_interval`` of the
    last checkpoint). A failed publish is retried with the newest head every
    ``every_seconds``."""

    def __init__(
        self,
        key: SigningKey,
        origin: str,
        sinks: Sequence[Sink],
        every_events: int = 1000,
        every_seconds: float = 5.0,
        urgent: Iterable[str] = URGENT_EVENTS,
        clock: Callable[[], datetime] = _utcnow,
        head_source: Callable[[], tuple[int, str] | None] | None = None,
        min_interval: float = 0.2,
    ) -> None:
        self.key = key
        self.origin = origin
        self.sinks = list(sinks)
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.urgent = frozenset(urgent)
        self.clock = clock
        # Another process's appends reach this one only through the database: a cheap read
        # of the head, made each time the timer fires (one indexed row).
        self.head_source = head_source
        self.min_interval = min_interval
        self._last_publish = 0.0
        # When the thread will next look (inf: not until woken).
        self._sleep_until = math.inf
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._seq = 0
        self._head = ""
        self._published = 0
        self._pending_since: float | None = None
        self._now = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition(self._lock)
        self._busy = False
        self._retry_at = 0.0
        self._status = PublishStatus(None, 0, None, None, False)

    # ------------------------------------------------------------------ the writer's side

    def observe(self, seq: int, head: str, event_types: Iterable[str] = ()) -> None:
        """A committed append: the chain now ends at event ``seq`` with hash ``head``."""
        with self._lock:
            if seq <= self._seq:
                return
            self._seq, self._head = seq, head
            act_at = math.inf
            if self._pending_since is None:
                self._pending_since = time.monotonic()
                act_at = self._pending_since + self.every_seconds
            if seq - self._published >= self.every_events:
                act_at = self._last_publish + self.min_interval
            if not self.urgent.isdisjoint(event_types):
                self._now = True
                act_at = self._last_publish + self.min_interval
            # Wake the thread only if it would otherwise sleep past when it must act: one
            # wake per decision, not one per append.
            wake = act_at < self._sleep_until
            if wake:
                self._sleep_until = act_at
        if wake:
            self._wake.set()

    # ------------------------------------------------------------------ the dashboard's side

    def status(self) -> PublishStatus:
        with self._lock:
            return self._status

    def report_error(self, message: str) -> None:
        """Show a failure found outside a publish (a setting that cannot work)."""
        self._record(None, [message])

    # ------------------------------------------------------------------ lifecycle

    def start(self, published: int = 0) -> None:
        """Start the thread; ``published``: the sequence already checkpointed (if known)."""
        self._published = published
        self._thread = threading.Thread(target=self._run, name="audit-publisher", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Publish whatever is not yet checkpointed now and wait for it; False on timeout."""
        with self._lock:
            if self._seq > self._published:
                self._now = True
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy or self._now:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._idle.wait(remaining):
                    return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Publish what is pending, then end the thread and close the sinks."""
        if self._thread is None:
            return
        self.flush(timeout)
        with self._lock:
            self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - closing must not hide the caller's outcome
                log.warning("closing checkpoint sink %s failed", sink.name, exc_info=True)

    # ------------------------------------------------------------------ the thread

    def _due(self) -> tuple[bool, float | None]:
        """Whether to publish now, else how long to sleep (None: until woken)."""
        # However urgent, checkpoints are at least min_interval apart: a burst of approvals
        # costs a few signatures a second, not one per event.
        gap = self._last_publish + self.min_interval - time.monotonic()
        if gap > 0 and (self._now or self._seq > self._published):
            return False, gap
        if self._now:
            return True, None
        if self._status.failing:
            # A sink is down: try again every every_seconds, however fast events come.
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                return False, wait
        if self._seq <= self._published:
            retry = self._status.failing and self._seq > 0
            return False, self.every_seconds if retry or self.head_source else None
        if self._seq - self._published >= self.every_events:
            return True, None
        since = self._pending_since if self._pending_since is not None else time.monotonic()
        wait = since + self.every_seconds - time.monotonic()
        return (wait <= 0), max(wait, 0.0)

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                due, wait = self._due()
                self._sleep_until = math.inf if due or wait is None else time.monotonic() + wait
            if not due:
                woken = self._wake.wait(wait)
                self._wake.clear()
                if not woken:
                    self._poll_or_retry()
                continue
            with self._lock:
                seq, head = self._seq, self._head
                self._busy, self._now = True, False
                self._pending_since = None
            self._publish(seq, head)

    def _poll_or_retry(self) -> None:
        if self.head_source is not None:
            try:
                found = self.head_source()
            except Exception as exc:  # noqa: BLE001 - a failed read is shown, never raised
                self._record(None, [f"reading the audit head: {exc}"])
                return
            if found is not None:
                self.observe(*found)
        with self._lock:
            if self._status.failing and self._seq > 0:
                self._now = True

    def _publish(self, seq: int, head: str) -> None:
        self._last_publish = time.monotonic()
        try:
            signed = sign(Checkpoint(self.origin, seq, head, self.clock()), self.key)
        except Exception as exc:  # noqa: BLE001 - the writer must never see this
            self._record(None, [f"signing: {exc}"])
            return
        errors: list[str] = []
        delivered = 0
        for sink in self.sinks:
            try:
                sink.publish(signed)
                delivered += 1
            except Exception as exc:  # noqa: BLE001 - one failing sink must not stop the rest
                text = str(exc) or type(exc).__name__
                errors.append(text if text.startswith(sink.name) else f"{sink.name}: {text}")
        self._record(seq if delivered else None, errors)

    def _record(self, seq: int | None, errors: list[str]) -> None:
        now = self.clock()
        with self._lock:
            old = self._status
            if seq is not None:
                self._published = max(self._published, seq)
            self._status = PublishStatus(
                now if seq is not None else old.last_success_at,
                self._published,
                errors[-1] if errors else old.last_error,
                now if errors else old.last_error_at,
                bool(errors),
                tuple(errors),
            )
            if errors:
                self._retry_at = time.monotonic() + self.every_seconds
            self._busy = False
            self._idle.notify_all()
        for error in errors:
            log.warning("audit checkpoint not published: %s", error)
