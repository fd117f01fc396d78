"""Latency, each from another process through the real database.

Our runner is ``operator run`` in its own process, idle before each measurement; the bench
process writes through ``ActionExecutor`` (whose commits poke the runner's wake-up socket)
and reads the outcome from the database. Every interval is between two timestamps the
engine stored (all UTC, microseconds, one clock): the start stamp of a transition is taken
before its transaction begins, so each figure includes the commit itself.

(a) approval → start: ``approved_at`` → the record's ``started_at``, one approval at a time
    (a random pause of 0–50 ms between them). Huey: ``time.time()`` at enqueue → the task
    body's first line, same cadence, its consumer idle in between.
(b) scheduled lateness: ``started_at − scheduled_at`` for 1,000 actions scheduled evenly over
    10 s (all proposed before the first is due). Huey: ``schedule(eta=...)``, the task
    body's start − eta.
(c) kill switch: 8 slow actions executing, ``ActionExecutor.kill_switch`` from the bench
    process; from the kill switch's ``changed_at`` to the last of the 8 records closed as
    cancelled. Resumed between pulls. No Huey figure: Huey cannot stop a running task.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    Figure,
    child_env,
    db_time,
    percentile,
    reader,
    runner_process,
    running,
    settle,
)

POLL = 0.002
GAP = 0.05


def _executor(db: Path, approval_mode: bool) -> Any:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry

    from bench.subjects import NoopSubject

    return ActionExecutor(
        db, ActionRegistry.from_subject(NoopSubject()), approval_mode=approval_mode
    )


def _wait_for(query: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = query()
        if value:
            return value
        time.sleep(POLL)
    raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")


# ---------------------------------------------------------------------- (a) approval → start


async def _approvals_ours(workdir: Path, n: int, seed: int) -> list[float]:
    db = workdir / "approval.db"
    rng = random.Random(seed)
    async with _executor(db, approval_mode=True) as ex:
        ids = [(await ex.propose_action("noop", {}, reason=f"approval {i}")).id for i in range(n)]
        with runner_process(workdir, db):
            conn = reader(db)
            samples = []
            for pid in ids:
                await ex.approve_proposal(pid, "bench")
                approved, started = _wait_for(
                    lambda pid=pid: conn.execute(
                        "SELECT p.approved_at, r.started_at FROM action_proposals p "
                        "JOIN action_records r ON r.proposal_id = p.id WHERE p.id = ?",
                        (pid,),
                    ).fetchone(),
                    10,
                    f"action {pid} to start",
                )
                samples.append(db_time(started) - db_time(approved))
                await asyncio.sleep(rng.uniform(0, GAP))
            conn.close()
    return samples


def _huey_consumer(db: Path, workers: int = 4) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.huey_consumer",
            "serve",
            "--db",
            str(db),
            "--workers",
            str(workers),
        ],
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("Huey consumer did not start")
    return proc


def _approvals_huey(workdir: Path, n: int, seed: int) -> list[float]:
    from bench import huey_app

    db = workdir / "huey-approval.db"
    huey_app.configure(str(db), "NORMAL")
    rng = random.Random(seed)
    samples = []
    with running(_huey_consumer(db)):  # type: ignore[arg-type]
        for _ in range(n):
            sent = time.time()
            result = huey_app.stamp(sent)
            started = _wait_for(result.get, 30, "a Huey task to start")
            samples.append(started - sent)
            time.sleep(rng.uniform(0, GAP))
    huey_app.huey.storage.close()
    return samples


# ---------------------------------------------------------------------- (b) scheduled lateness


async def _scheduled_ours(workdir: Path, n: int, spread: float) -> list[float]:
    from datetime import timedelta

    db = workdir / "scheduled.db"
    async with _executor(db, approval_mode=False) as ex:
        with runner_process(workdir, db):
            first = datetime.now(UTC) + timedelta(seconds=2.0)
            for i in range(n):
                await ex.propose_action(
                    "noop",
                    {},
                    reason=f"scheduled {i}",
                    scheduled_at=first + timedelta(seconds=spread * i / n),
                )
            conn = reader(db)
            late = conn.execute(
                "SELECT COUNT(*) FROM action_proposals WHERE proposed_at > scheduled_at"
            ).fetchone()[0]
            if late:
                print(
                    f"  warning: {late} actions were proposed after they were due", file=sys.stderr
                )
            _wait_for(
                lambda: (
                    conn.execute(
                        "SELECT COUNT(*) FROM action_records WHERE started_at IS NOT NULL"
                    ).fetchone()[0]
                    >= n
                ),
                spread + 60,
                "every scheduled action to start",
            )
            rows = conn.execute(
                "SELECT p.scheduled_at, MIN(r.started_at) FROM action_proposals p "
                "JOIN action_records r ON r.proposal_id = p.id GROUP BY p.id"
            ).fetchall()
            conn.close()
    return [db_time(started) - db_time(due) for due, started in rows]


def _scheduled_huey(workdir: Path, n: int, spread: float) -> list[float]:
    from bench import huey_app

    db = workdir / "huey-scheduled.db"
    huey_app.configure(str(db), "NORMAL")
    with running(_huey_consumer(db)):  # type: ignore[arg-type]
        first = time.time() + 2.0
        pending = []
        for i in range(n):
            eta = first + spread * i / n
            pending.append(
                (eta, huey_app.stamp.schedule(args=(eta,), eta=datetime.fromtimestamp(eta, UTC)))
            )
        time.sleep(max(0.0, first + spread - time.time()))
        samples = []
        for eta, result in pending:
            started = _wait_for(result.get, 30, "a scheduled Huey task to start")
            samples.append(started - eta)
    huey_app.huey.storage.close()
    return samples


# ---------------------------------------------------------------------- (c) kill switch


async def _kill_switch_ours(workdir: Path, pulls: int, inflight: int) -> list[float]:
    db = workdir / "kill.db"
    samples = []
    async with _executor(db, approval_mode=False) as ex:
        with runner_process(workdir, db, concurrency=inflight):
            conn = reader(db)
            for _ in range(pulls):
                ids = [
                    (
                        await ex.propose_action(
                            "sleep", {"seconds": 300}, reason="kill switch bench"
                        )
                    ).id
                    for _ in range(inflight)
                ]
                marks = ",".join("?" * len(ids))
                _wait_for(
                    lambda marks=marks, ids=ids: (
                        conn.execute(
                            f"SELECT COUNT(*) FROM action_records WHERE proposal_id IN ({marks}) "
                            "AND completed_at IS NULL",
                            ids,
                        ).fetchone()[0]
                        == len(ids)
                    ),
                    30,
                    f"{inflight} actions to be executing",
                )
                result = await ex.kill_switch("bench")
                if sorted(result.executing_signalled) != sorted(ids):
                    raise RuntimeError(
                        f"kill switch signalled {result.executing_signalled}, expected {ids}"
                    )
                changed_at = conn.execute(
                    "SELECT changed_at FROM safety_state WHERE id = 1"
                ).fetchone()[0]
                last = _wait_for(
                    lambda marks=marks, ids=ids: conn.execute(
                        f"SELECT MAX(r.completed_at) FROM action_proposals p JOIN action_records r"
                        f" ON r.proposal_id = p.id WHERE p.id IN ({marks}) HAVING "
                        "SUM(p.status = 'cancelled' AND r.completed_at IS NOT NULL) = ?",
                        (*ids, len(ids)),
                    ).fetchone(),
                    30,
                    "every in-flight action to be cancelled",
                )
                samples.append(db_time(last[0]) - db_time(changed_at))
                await ex.resume("bench", "kill switch bench")
            conn.close()
    return samples


# ---------------------------------------------------------------------- the benchmark


def bench(runs: int, quick: bool, log: Callable[[str], None] = print) -> list[Figure]:
    approvals = 20 if quick else 200
    scheduled, spread = (100, 2.0) if quick else (1000, 10.0)
    pulls = 3 if quick else 20
    ms = 1000.0
    a50 = Figure(f"latency (a): approval → start, {approvals} approvals", "p50", "ms", peer=[])
    a99 = Figure(a50.bench, "p99", "ms", peer=[], target="p99 ≤ 50 ms", meets=lambda v: v <= 50)
    b50 = Figure(
        f"latency (b): scheduled lateness, {scheduled} actions over {spread:g} s",
        "p50",
        "ms",
        peer=[],
    )
    b99 = Figure(b50.bench, "p99", "ms", peer=[], target="p99 ≤ 20 ms", meets=lambda v: v <= 20)
    c50 = Figure(
        f"latency (c): kill switch → 8 in flight cancelled and recorded, {pulls} pulls", "p50", "ms"
    )
    c99 = Figure(c50.bench, "p99", "ms", target="p99 ≤ 250 ms", meets=lambda v: v <= 250)
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
            work = Path(tmp)
            settle()
            ours = asyncio.run(_approvals_ours(work, approvals, seed=i))
            settle()
            peer = _approvals_huey(work, approvals, seed=i)
            for fig, q in ((a50, 50), (a99, 99)):
                fig.ours.append(percentile(ours, q) * ms)
                assert fig.peer is not None
                fig.peer.append(percentile(peer, q) * ms)
            log(
                f"  run {i + 1}/{runs} (a) approval→start p50/p99: ours "
                f"{a50.ours[-1]:.1f}/{a99.ours[-1]:.1f} ms, Huey "
                f"{a50.peer[-1]:.1f}/{a99.peer[-1]:.1f} ms"
            )  # type: ignore[index]
            settle()
            ours = asyncio.run(_scheduled_ours(work, scheduled, spread))
            settle()
            peer = _scheduled_huey(work, scheduled, spread)
            for fig, q in ((b50, 50), (b99, 99)):
                fig.ours.append(percentile(ours, q) * ms)
                assert fig.peer is not None
                fig.peer.append(percentile(peer, q) * ms)
            log(
                f"  run {i + 1}/{runs} (b) scheduled lateness p50/p99: ours "
                f"{b50.ours[-1]:.1f}/{b99.ours[-1]:.1f} ms, Huey "
                f"{b50.peer[-1]:.1f}/{b99.peer[-1]:.1f} ms"
            )  # type: ignore[index]
            settle()
            ours = asyncio.run(_kill_switch_ours(work, pulls, 8))
            c50.ours.append(percentile(ours, 50) * ms)
            c99.ours.append(percentile(ours, 99) * ms)
            log(
                f"  run {i + 1}/{runs} (c) kill switch p50/p99: "
                f"{c50.ours[-1]:.1f}/{c99.ours[-1]:.1f} ms"
            )
    return [a50, a99, b50, b99, c50, c99]
