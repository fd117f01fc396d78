"""Throughput: N no-op actions through the whole lifecycle, against Huey's SqliteHuey.

Ours: the bench process proposes N actions one by one through
``ActionExecutor.propose_action`` (approval off; each is validated and stored with its
``proposed`` audit event, one transaction each), and again in batches of 100 through
``ActionExecutor.propose_actions`` (one transaction per batch); then
``operator run --until-idle`` runs as a separate process and claims, executes through the
no-op subject and completes them, writing a record and two more audit events per action.

Huey: the bench process enqueues N no-op tasks; then a consumer process (thread workers,
as many as our runner's concurrency) drains them.

Both on a fresh file in a temporary directory, WAL, at the same ``PRAGMA synchronous``.
Each run measures each side twice in mirrored order (ours, ours batched, Huey, Huey, ours
batched, ours) and pools the two, so a drift in the machine's speed during the run weighs
on both sides alike.
The execute rate is measured inside the draining process's own window (first start to
last finish, from the records for ours and from the task bodies for Huey), so interpreter
start-up counts for neither; end-to-end is N / (propose time + execute window).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    REPO,
    Figure,
    child_env,
    db_time,
    env_var,
    reader,
    settle,
    spawn_runner,
)

SYNC_LEVELS = ("NORMAL", "FULL")


@dataclass
class Run:
    propose_s: float
    execute_s: float
    n: int
    events_per_action: float = 0.0

    @property
    def propose_rate(self) -> float:
        return self.n / self.propose_s

    @property
    def execute_rate(self) -> float:
        return self.n / self.execute_s

    @property
    def end_to_end(self) -> float:
        return self.n / (self.propose_s + self.execute_s)


BATCH = 100


def pooled(a: Run, b: Run) -> Run:
    """Two measurements of the same thing as one: total actions over total time."""
    return Run(a.propose_s + b.propose_s, a.execute_s + b.execute_s, a.n + b.n)


async def _propose(db: Path, n: int, synchronous: str, batch: int = 1) -> float:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry

    from bench.subjects import NoopSubject

    with env_var("OPERATOR_SQLITE_SYNCHRONOUS", synchronous):
        executor = ActionExecutor(
            db, ActionRegistry.from_subject(NoopSubject()), approval_mode=False
        )
    async with executor as ex:
        start = time.perf_counter()
        if batch == 1:
            for i in range(n):
                await ex.propose_action("noop", {}, reason=f"throughput {i}")
        else:
            for first in range(0, n, batch):
                await ex.propose_actions(
                    [
                        {"action_name": "noop", "reason": f"throughput {i}"}
                        for i in range(first, min(n, first + batch))
                    ]
                )
        return time.perf_counter() - start


def run_ours(workdir: Path, n: int, synchronous: str, concurrency: int, batch: int = 1) -> Run:
    db = workdir / f"ours-{synchronous}-{batch}.db"
    settle()
    propose_s = asyncio.run(_propose(db, n, synchronous, batch))
    with open(workdir / "runner.log", "ab") as log:
        proc = spawn_runner(
            db, log, concurrency=concurrency, until_idle=True, synchronous=synchronous
        )
        if proc.wait(timeout=600) != 0:
            raise RuntimeError(f"runner failed; see {workdir / 'runner.log'}")
    conn = reader(db)
    try:
        first, last, done = conn.execute(
            "SELECT MIN(started_at), MAX(completed_at), SUM(success = 1) FROM action_records"
        ).fetchone()
        events = conn.execute("SELECT COUNT(*) FROM action_audit_log").fetchone()[0]
    finally:
        conn.close()
    if done != n or events < 3 * n:
        raise RuntimeError(
            f"expected {n} completed actions with their audit events, got "
            f"{done} and {events} events"
        )
    return Run(propose_s, db_time(last) - db_time(first), n, events / n)


def run_huey(workdir: Path, n: int, synchronous: str, workers: int) -> Run:
    from bench import huey_app

    db = workdir / f"huey-{synchronous}.db"
    huey_app.configure(str(db), synchronous)
    settle()
    start = time.perf_counter()
    for _ in range(n):
        huey_app.noop()
    propose_s = time.perf_counter() - start
    huey_app.huey.storage.close()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.huey_consumer",
            "drain",
            str(n),
            "--db",
            str(db),
            "--synchronous",
            synchronous,
            "--workers",
            str(workers),
        ],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["ran"] != n:
        raise RuntimeError(f"Huey ran {result['ran']} of {n} tasks")
    return Run(propose_s, result["last_end"] - result["first_start"], n)


def bench(runs: int, quick: bool, concurrency: int = 4, log=print) -> list[Figure]:
    n = 300 if quick else 5000
    figures: list[Figure] = []
    for level in SYNC_LEVELS:
        group = f"throughput, {n:,} no-op actions, synchronous={level}"
        propose = Figure(group, "propose (ours) / enqueue (Huey)", "per s")
        execute = Figure(
            group, f"execute: claim, run, complete (concurrency {concurrency})", "per s"
        )
        e2e = Figure(
            group,
            "end-to-end",
            "actions/s",
            target="≥ 1.0x Huey",
            meets=lambda ratio: ratio >= 1.0,
            judge_ratio=True,
        )
        propose_b = Figure(group, f"propose in batches of {BATCH} (ours) / enqueue (Huey)", "per s")
        e2e_b = Figure(
            group,
            f"end-to-end, proposals in batches of {BATCH}",
            "actions/s",
            target="≥ 1.0x Huey",
            meets=lambda ratio: ratio >= 1.0,
            judge_ratio=True,
        )
        for fig in (propose, execute, e2e, propose_b, e2e_b):
            fig.peer = []
        for i in range(runs):
            with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
                first, second = Path(tmp) / "first", Path(tmp) / "second"
                first.mkdir()
                second.mkdir()
                # Each side twice, in mirrored order, pooled: the machine's speed drifts
                # over seconds, and this gives both sides the same average place in time.
                ours_1 = run_ours(first, n, level, concurrency)
                batched_1 = run_ours(first, n, level, concurrency, BATCH)
                peer_1 = run_huey(first, n, level, concurrency)
                peer_2 = run_huey(second, n, level, concurrency)
                batched_2 = run_ours(second, n, level, concurrency, BATCH)
                ours_2 = run_ours(second, n, level, concurrency)
            ours, batched, peer = (
                pooled(ours_1, ours_2),
                pooled(batched_1, batched_2),
                pooled(peer_1, peer_2),
            )
            for fig, a, b in (
                (propose, ours.propose_rate, peer.propose_rate),
                (execute, ours.execute_rate, peer.execute_rate),
                (e2e, ours.end_to_end, peer.end_to_end),
                (propose_b, batched.propose_rate, peer.propose_rate),
                (e2e_b, batched.end_to_end, peer.end_to_end),
            ):
                fig.ours.append(a)
                assert fig.peer is not None
                fig.peer.append(b)
            log(
                f"  {level} run {i + 1}/{runs}: ours {ours.end_to_end:.0f}/s "
                f"(propose {ours.propose_rate:.0f}/s, execute {ours.execute_rate:.0f}/s), "
                f"Huey {peer.end_to_end:.0f}/s (enqueue {peer.propose_rate:.0f}/s, "
                f"execute {peer.execute_rate:.0f}/s); batched proposals: "
                f"{batched.end_to_end:.0f}/s (propose {batched.propose_rate:.0f}/s)"
            )
        figures += [propose, execute, e2e, propose_b, e2e_b]
    return figures
