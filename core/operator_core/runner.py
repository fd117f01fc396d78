"""The runner: time and concurrency. Claims ready actions and runs them through the subject.

It sleeps until the next due time or until another process commits a change (a socket poke
on SQLite, a NOTIFY on PostgreSQL, with ``data_version`` polling as the fallback), never on
a fixed short tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.fingerprint import ApprovalVoided
from operator_core.automation_runner import AutomationStep
from operator_core.db import heartbeats
from operator_core.db.actions import AttemptResult, Claim
from operator_core.db.faults import describe, storable, trouble
from operator_core.db.killfile import KILL_REASON
from operator_core.db.lost import LostNote
from operator_core.errors import InvalidTransitionError
from operator_core.notify import Waker
from operator_core.outage import Outage
from operator_core.safe_text import visible
from operator_core.subjects.process_groups import settle_lost_group

T = TypeVar("T")

log = logging.getLogger("operator.runner")

# How long a lost attempt's process group has after SIGTERM before SIGKILL (the action's own
# kill_grace is not known here: the recovering runner may not offer the action at all).
LOST_GROUP_GRACE = 1.0


@dataclass
class RunnerStats:
    """Attempts as this runner saw them end (``failed`` counts every failed attempt, also
    one whose action waits for a retry); ``actions``: every action it attempted, whose
    state in the database says how each really ended."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    recovered: list[int] = field(default_factory=list)
    actions: set[int] = field(default_factory=set)


def _attempt_name(claim: Claim) -> str:
    p = claim.proposal
    return f"action {p.id} attempt {claim.record.attempt} ({p.action_name})"


def _outcome(claim: Claim, result: AttemptResult) -> tuple[str, str]:
    """How an attempt ended, as the log says it: what, and the details after the time.
    Whether a failure is retried is foreseen from the claim (the transaction recording it
    decides: it may find the action cancelled meanwhile)."""
    if result.success:
        return "ok", ""
    p = claim.proposal
    error = visible(result.error or "no error given")
    if (
        result.retryable
        and result.retry_delay_seconds is not None
        and p.retry_count < p.max_retries
    ):
        wait = result.retry_delay_seconds
        return "failed", f", retry {p.retry_count + 1}/{p.max_retries} in {wait:.3g}s: {error}"
    return "failed for good", f": {error}"


def _log_attempt(
    claim: Claim, began: float, began_at: datetime | None, outcome: tuple[str, str]
) -> None:
    """One line per attempt at INFO (``operator run``'s default): outcome, duration, start."""
    what, details = outcome
    log.info(
        "%s: %s after %.2fs (started %s)%s",
        _attempt_name(claim),
        what,
        time.monotonic() - began,
        began_at.strftime("%Y-%m-%dT%H:%M:%SZ") if began_at else "-",
        details,
    )


def new_runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Runner:
    """One asyncio loop that executes work from the database."""

    def __init__(
        self,
        executor: ActionExecutor,
        *,
        concurrency: int = 4,
        lease_seconds: float = 30.0,
        poll_interval: float | None = None,
        grace_seconds: float = 10.0,
        runner_id: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease seconds must be positive")
        self.executor = executor
        self.db = executor.db
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        # None: the database's own default (0.5 s; OPERATOR_PG_POLL_SECONDS on PostgreSQL).
        self.poll_interval = poll_interval if poll_interval is not None else self.db.poll_seconds()
        self.grace_seconds = grace_seconds
        self.runner_id = runner_id or new_runner_id()
        self.stats = RunnerStats()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._finished: list[tuple[Claim, AttemptResult]] = []
        # Stopped attempts (cancel, kill switch) not yet recorded: the database was busy.
        self._stops: list[tuple[Claim, str]] = []
        self._stop_reasons: dict[int, str] = {}
        self._outage = Outage(log)
        # Each attempt's time limit, kept by one timer for all of them (an asyncio.timeout
        # per attempt costs a timer and a context of its own).
        self._deadlines: dict[int, float] = {}
        self._timed_out: set[int] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._poked = False
        self._stopping = asyncio.Event()
        self._listener: Waker | None = None
        self._kill = executor.db.kill_file
        self._kill_watch: asyncio.TimerHandle | None = None
        self.automations = AutomationStep(executor, self.runner_id, lease_seconds)
        # When the last cycle looked at the database: anything due since then wakes us.
        self._cycle_at = executor.db.clock.now()
        self.heartbeat_seconds = heartbeats.HEARTBEAT_SECONDS
        self._next_beat = 0.0  # the loop's time of the next heartbeat

    # ------------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Stop claiming; finish in-flight work within the grace period (SIGINT/SIGTERM)."""
        self._stopping.set()
        self._wake.set()

    def poke(self) -> None:
        """Wake the loop now and re-check everything (a writer sharing this runner's
        connection changed something, e.g. cancelled an action: no poke or data_version
        change reaches us for our own connection's commits)."""
        self._poked = True
        self._wake.set()

    @property
    def inflight(self) -> list[int]:
        return list(self._inflight)

    # ------------------------------------------------------------------ main loop

    async def run(self, until_idle: bool = False) -> RunnerStats:
        await self.executor.open()
        # A damaged file is no outage to wait out: it needs a backup (one line, exit 1).
        await self.db.check_health()
        self._listener = self.db.listener()
        if self._listener.start():
            self.db.set_listener_name(self._listener.name)
        else:
            self._listener = None
        self._watch_kill()
        # PostgreSQL's switch is a row other hosts write: read it on this cadence too.
        watch = getattr(self._kill, "watch", None)  # db/pg/killswitch.py
        if watch is not None:
            watch(self.poll_interval, self._stop_if_killed)
        await self._beat(heartbeats.started)
        try:
            await self._loop(until_idle)
        finally:
            await self._shutdown()
            await self._beat(heartbeats.stopped)
            if self._kill_watch is not None:
                self._kill_watch.cancel()
            if watch is not None:
                await self._kill.unwatch()  # type: ignore[attr-defined]
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            if self._listener is not None:
                self._listener.stop()
                self.db.set_listener_name(None)
        return self.stats

    async def _loop(self, until_idle: bool) -> None:
        loop = asyncio.get_running_loop()
        last_version = await self.db.data_version()
        last_renew = loop.time()
        external = True
        while not self._stopping.is_set():
            self._wake.clear()
            if self._listener is not None and self._listener.event.is_set():
                self._listener.event.clear()
                external = True
            if self._poked:
                self._poked = False
                external = True
            # Before the claim, so that an automation's proposals can be claimed this turn.
            automated = await self._guarded(
                self.automations.cycle(external), "advance automations", False
            )
            self._stop_if_killed()
            if external and self._inflight:
                # Read again next turn if the database could not be read now.
                external = not await self._guarded(
                    self._cancel_requested(), "read stop requests", False
                )
            else:
                external = False
            if self._stops:
                await self._guarded(self._record_stops(), "record stopped attempts", None)
            self._cycle_at = self.db.clock.now()
            claims, expired, lost = await self._flush_and_claim()
            if lost:
                await self._guarded(self._recover(), "recover lost actions", None)
            if expired:
                await self._guarded(self.executor.expire_due(), "expire proposals", None)
            if (
                until_idle
                and not self._inflight
                and not claims
                and not self._finished
                and not self._outage.active
                and not automated
                and not await self._automation_due()
            ):
                return
            held = self._held()
            if held and loop.time() - last_renew >= self.lease_seconds / 3:
                renewal = self.db.renew_leases(self.runner_id, held, self.lease_seconds)
                if await self._guarded(renewal, "renew leases", False) is None:  # None: done
                    last_renew = loop.time()
            if loop.time() >= self._next_beat:
                await self._beat(heartbeats.beat)
            self._outage.settle()
            if claims and not self._finished:
                # Attempts that finish at once (their first step) do so in this turn of
                # the event loop: let them, and record them now instead of going to sleep.
                await asyncio.sleep(0)
            if (
                (not self._finished or self._outage.active)
                and (not claims or len(self._inflight) >= self.concurrency)
                and not automated
            ):
                version = await self._sleep(last_version)
                if version != last_version:
                    external = True
                last_version = version

    async def _flush_and_claim(self, claim: bool = True) -> tuple[list[Claim], bool, bool]:
        """Record finished attempts and claim up to the free slots (none without ``claim``),
        in one transaction that also says whether a proposal expired or a lease ran out."""
        finished, self._finished = self._finished, []
        free = self.concurrency - len(self._inflight) if claim else 0
        # Right here when the database needs no waiting (the usual case: no task, no turn
        # of the event loop); else shielded, so that once the worker thread has the
        # transaction in hand, stopping this loop cannot lose what it recorded and claimed.
        try:
            done = self.db.runner_cycle_now(self.runner_id, finished, free, self.lease_seconds)
            if done is None:
                done = await asyncio.shield(
                    self.db.runner_cycle(self.runner_id, finished, free, self.lease_seconds)
                )
        except Exception as exc:
            # Nothing was recorded nor claimed (one transaction): keep the outcomes, claim
            # nothing new until they are recorded, and try again after a backoff.
            self._finished[:0] = finished
            self._outage.failed(exc, "record outcomes and claim work", len(self._finished))
            return [], False, False
        claims, expired, lost = done
        if claims and self._kill.engaged():
            # Pulled since the claim looked (one stat per cycle): start none of them.
            for claim in claims:
                await self._record_stop(claim, KILL_REASON)
            claims = []
        for _, result in finished:
            if result.success:
                self.stats.completed += 1
            else:
                self.stats.failed += 1
        for claim in claims:
            pid = claim.proposal.id
            assert pid is not None
            self.stats.claimed += 1
            self.stats.actions.add(pid)
            task = asyncio.create_task(self._attempt(claim), name=f"action-{pid}")
            self._inflight[pid] = task
            timeout = self.executor.attempt_timeout(claim.proposal)
            if timeout is not None:
                self._set_deadline(pid, asyncio.get_running_loop().time() + timeout)
        return claims, expired, lost

    def _watch_kill(self) -> None:
        """Every poll interval, whatever the loop is waiting for (the database's lock too),
        look for the kill file."""
        self._stop_if_killed()
        self._kill_watch = asyncio.get_running_loop().call_later(
            self.poll_interval, self._watch_kill
        )

    def _stop_if_killed(self) -> None:
        """The kill file is there: cancel every attempt in flight (each is recorded as
        cancelled by the kill switch once the database can be written). One stat."""
        if not self._inflight or not self._kill.engaged():
            return
        for pid, task in self._inflight.items():
            if not task.done() and not task.cancelling():
                self._stop_reasons[pid] = KILL_REASON
                task.cancel()

    def _set_deadline(self, pid: int, deadline: float) -> None:
        self._deadlines[pid] = deadline
        if self._watchdog is None or deadline < self._watchdog.when():
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._watchdog = asyncio.get_running_loop().call_at(deadline, self._expire_attempts)

    def _expire_attempts(self) -> None:
        """The watchdog: cancel every attempt past its time limit (reported as timed out),
        then wait for the next limit."""
        self._watchdog = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for pid, deadline in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[pid]
                task = self._inflight.get(pid)
                if task is not None and not task.done():
                    self._timed_out.add(pid)
                    task.cancel()
        if self._deadlines:
            self._watchdog = loop.call_at(min(self._deadlines.values()), self._expire_attempts)

    async def _sleep(self, last_version: int) -> int:
        """Wait for a poke, a finished task, the next due time or a lease renewal; between
        pokes, poll ``data_version`` every poll_interval. Returns the data version seen."""
        loop = asyncio.get_running_loop()
        limits = []
        if self._outage.active:
            limits.append(self._outage.delay)
        elif len(self._inflight) < self.concurrency:  # at capacity, nothing new could start
            nxt = await self._guarded(
                self.db.next_wakeup(after=self._cycle_at), "read the next due time", None
            )
            if nxt is not None:
                limits.append((nxt - self.db.clock.now()).total_seconds())
            due = await self._guarded(
                self.automations.next_due(), "read the automations' next due time", None
            )
            if due is not None:
                limits.append((due - self.db.clock.now()).total_seconds())
        if self._held():
            limits.append(self.lease_seconds / 3)
        limits.append(self._next_beat - loop.time())
        end = loop.time() + min(limits) if limits else float("inf")
        if end <= loop.time():
            await asyncio.sleep(0)
            return last_version
        waiters = [asyncio.ensure_future(self._wake.wait())]
        if self._listener is not None:
            waiters.append(asyncio.ensure_future(self._listener.event.wait()))
        try:
            while True:
                timeout = min(self.poll_interval, end - loop.time())
                if timeout <= 0:
                    break
                done, _ = await asyncio.wait(
                    waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    break
                version = await self._guarded(
                    self.db.data_version(), "read the database", last_version
                )
                if version != last_version:
                    return version
        finally:
            for w in waiters:
                w.cancel()
        return last_version

    # ------------------------------------------------------------------ attempts

    async def _attempt(self, claim: Claim) -> None:
        pid = claim.proposal.id
        assert pid is not None
        logging_on = log.isEnabledFor(logging.INFO)  # off in a demo or a benchmark
        began, began_at = time.monotonic(), self.db.clock.now() if logging_on else None
        if logging_on:
            log.debug("%s: started", _attempt_name(claim))
        try:
            await self.executor.check_approval(claim, self.runner_id)
            result = await self.executor.perform(claim, enforce_timeout=False)
            if result.error is not None and not result.error.isascii():
                result = result._replace(error=storable(result.error))  # a subject's bytes
            self._finished.append((claim, result))
            if logging_on:
                _log_attempt(claim, began, began_at, _outcome(claim, result))
        except asyncio.CancelledError:
            if pid in self._timed_out and pid not in self._stop_reasons:
                # The watchdog's cancel, not a stop: the attempt failed by timing out.
                result = self.executor.timed_out(claim)
                self._finished.append((claim, result))
                if logging_on:
                    _log_attempt(claim, began, began_at, _outcome(claim, result))
            else:
                reason = self._stop_reasons.pop(pid, "runner shutdown")
                if logging_on:
                    _log_attempt(claim, began, began_at, (f"stopped ({reason})", ""))
                await asyncio.shield(self._record_stop(claim, reason))
        except ApprovalVoided:
            pass  # recorded and logged already: nothing ran, nothing to finish
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            # Running it raised outside the subject's own failures (its context, its result,
            # an exception that is not an Exception): it would again, so no retry, unless
            # the database was in trouble (e.g. reading its ticket).
            log.exception("attempt of action %s crashed", pid)
            error = f"the runner could not run this attempt: {describe(exc)}"
            delay = None
            if trouble(exc) is not None:
                delay = self.executor.retry_delay(None, claim.proposal.retry_count)
            self._finished.append(
                (claim, AttemptResult(False, None, error, delay is not None, delay))
            )
        finally:
            self._inflight.pop(pid, None)
            self._deadlines.pop(pid, None)
            self._timed_out.discard(pid)
            self._wake.set()

    async def _record_stop(self, claim: Claim, reason: str) -> None:
        try:
            if reason == "runner shutdown":
                # Not the action's fault: the attempt is recorded as interrupted and the
                # action goes back to the queue without spending a retry.
                await self.db.requeue_attempt(claim, self.runner_id, "runner shutdown")
                self.stats.failed += 1
            else:
                await self.db.cancel_attempt(claim, self.runner_id, reason)
                self.stats.cancelled += 1
        except InvalidTransitionError:
            pass  # it finished and was recorded just before the stop arrived
        except Exception as exc:
            self._stops.append((claim, reason))  # held, and recorded when the database can
            self._outage.failed(exc, "record a stopped attempt", len(self._stops))

    async def _record_stops(self) -> None:
        stops, self._stops = self._stops, []
        for claim, reason in stops:
            await self._record_stop(claim, reason)

    async def _beat(self, record: Callable[..., None]) -> None:
        """Say this runner is up (``heartbeats.started`` first, then ``heartbeats.beat``, and
        ``heartbeats.stopped`` last), and when to say it again. A beat the database cannot
        take now is skipped, not an outage: the work's own writes say that, once."""
        self._next_beat = asyncio.get_running_loop().time() + self.heartbeat_seconds
        if record is heartbeats.stopped:
            args: tuple[object, ...] = (self.runner_id, self.db.clock.now())
        else:
            host, pid = socket.gethostname(), os.getpid()
            args = (self.runner_id, host, pid, self.db.clock.now())
        try:
            await self.db.write(record, *args)
        except Exception as exc:
            log.debug("heartbeat not recorded: %s", describe(exc))

    def _held(self) -> list[int]:
        """The actions this runner holds: running, or finished but not yet recorded."""
        held = list(self._inflight)
        held.extend(c.proposal.id for c, _ in self._finished if c.proposal.id is not None)
        held.extend(c.proposal.id for c, _ in self._stops if c.proposal.id is not None)
        return held

    async def _automation_due(self) -> bool:
        """Automation work is due now (an attempt just recorded may have ended a proposal an
        execution waits for)."""
        due = await self._guarded(self.automations.next_due(), "read automations", None)
        return due is not None and due <= self.db.clock.now()

    async def _guarded(self, work: Awaitable[T], doing: str, default: T) -> T:
        """``await work``; if it fails (the database locked past the busy timeout, full...),
        the outage notes it (logged once, backing off) and the loop goes on with
        ``default``."""
        try:
            return await work
        except Exception as exc:
            self._outage.failed(exc, doing, len(self._finished))
            return default

    async def _cancel_requested(self) -> bool:
        for pid, reason in (await self.db.stop_requested(self.runner_id)).items():
            task = self._inflight.get(pid)
            if task is not None and not task.done():
                self._stop_reasons[pid] = reason
                task.cancel()
        return True

    async def _recover(self) -> None:
        """Recover actions whose runner was lost; first end their commands' process groups
        still running on this host (each verified by its start token), so that a retry never
        runs beside the attempt it replaces. Our own actions are never lost: we are alive."""
        lost = await self.db.lost_attempts(self.runner_id)
        groups = [a for a in lost if a.host and a.pgid]
        # The loop waits meanwhile: short enough that our own leases do not run out.
        grace = min(LOST_GROUP_GRACE, self.lease_seconds / 4)
        found = await asyncio.gather(
            *(settle_lost_group(a.host or "", a.pgid or 0, a.process_start, grace) for a in groups)
        )
        notes = {a.proposal_id: LostNote(*f) for a, f in zip(groups, found, strict=True)}
        # Only those seen to here: a lease that ran out meanwhile waits for the next pass,
        # which the wake makes immediate.
        recovered = await self.db.recover_expired_leases(
            lambda retry_count: self.executor.retry_delay(None, retry_count),
            notes,
            only={a.proposal_id for a in lost},
            runner_id=self.runner_id,
        )
        self._wake.set()
        if recovered:
            log.warning(
                "recovered %d action(s) left by a lost runner: %s", len(recovered), recovered
            )
        self.stats.recovered.extend(recovered)

    async def _shutdown(self) -> None:
        """Let in-flight attempts finish within the grace period, cancel the rest (each is
        recorded), and record every finished attempt."""
        tasks = list(self._inflight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.grace_seconds)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        # Record what finished; while the database cannot be written, try again for up to
        # the grace period, then say what could not be recorded.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace_seconds
        while self._finished or self._stops:
            await self._record_stops()
            if self._finished:
                await self._flush_and_claim(claim=False)
            self._outage.settle()
            if not (self._finished or self._stops) or loop.time() >= deadline:
                break
            await asyncio.sleep(self._outage.delay)
        lost = [c.proposal.id for c, _ in self._finished] + [c.proposal.id for c, _ in self._stops]
        if lost:
            log.error(
                "runner exiting with the outcome of action(s) %s not recorded (the "
                "database could not be written): once their leases expire, the next "
                "runner records those attempts as lost and runs them again if retries "
                "remain",
                lost,
            )
