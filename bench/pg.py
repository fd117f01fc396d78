"""PostgreSQL: ours against procrastinate on one local server (issue 26, "Speed").

The server is ``$BENCH_PG_URL`` (a URL whose user may ``CREATE DATABASE``) if set, else a
throwaway cluster started here (tests/support/pgcluster.py: 127.0.0.1, fsync off,
synchronous_commit off, for both sides alike). Every measurement gets a fresh database.

(a) Throughput, N no-op actions end to end with 1, 2 and 4 runner processes. Ours: the
    bench process proposes N actions one by one through ``ActionExecutor.propose_action``
    (approval off: each is stored approved with its audit events, one transaction each);
    then K ``operator run --until-idle --concurrency 4`` processes claim, execute through
    the no-op subject and complete them (a record and two more chained audit events each).
    Procrastinate: the bench process defers N jobs one by one (``defer_async``); then K
    worker processes (``concurrency=4``, ``wait=False``) drain them. The execute window is
    read from each side's own rows (first start to last end: records for ours,
    ``procrastinate_events`` for the peer), so interpreter start-up counts for neither;
    end-to-end is N / (propose time + execute window). Ours and the peer alternate which
    goes first from run to run.
(b) Approval → start across two processes: one ``operator run`` idle in its process, the
    bench process approves one action at a time (a random pause of 0–50 ms between them);
    ``approved_at`` → the record's ``started_at``. Procrastinate: one idle worker process,
    the bench process defers one job at a time; its ``deferred`` event → its ``started``
    event. The first sample of each side (the process warming up) is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.common import NOOP_SUBJECT, REPO, Figure, child_env, db_time, percentile, stop
from bench.throughput import Run

RUNNER_COUNTS = (1, 2, 4)
CONCURRENCY = 4
POLL = 0.005
GAP = 0.05
URL_ENV = "BENCH_PG_URL"


# ---------------------------------------------------------------------- the server


@contextlib.contextmanager
def server() -> Iterator[str]:
    """An admin URL: $BENCH_PG_URL, or a throwaway cluster's, stopped when left."""
    external = os.environ.get(URL_ENV)
    if external:
        yield external
        return
    from tests.support.pgcluster import Cluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(f"no PostgreSQL server binaries: install them or set {URL_ENV}")
    cluster = Cluster(bindir).start()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.stop()


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@contextlib.contextmanager
def fresh_db(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped when left."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _one(url: str, sql: str, params: Any = ()) -> Any:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchone()  # type: ignore[arg-type]


def _wait_for(query: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = query()
        if value:
            return value
        time.sleep(POLL)
    raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")


@contextlib.contextmanager
def serving(log_path: Path, start: Callable[[Any], subprocess.Popen[Any]]) -> Iterator[None]:
    """A long-running process (its output in ``log_path``), stopped when left."""
    with open(log_path, "ab") as log:
        proc = start(log)
        try:
            yield
        finally:
            stop(proc)


@contextlib.contextmanager
def _reader(url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def _peer_serve(url: str, log: Any) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        _peer_worker(url, "serve"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log,
        env=child_env(),
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        stop(proc)  # type: ignore[arg-type]
        raise RuntimeError("procrastinate worker did not start")
    return proc


# ---------------------------------------------------------------------- ours


def _executor(url: str, approval_mode: bool) -> Any:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry
    from operator_core.db.pg.store import PgActionDB
    from operator_core.db.url import NOWHERE

    from bench.subjects import NoopSubject

    registry = ActionRegistry.from_subject(NoopSubject())
    return ActionExecutor(NOWHERE, registry, approval_mode=approval_mode, db=PgActionDB(url))


async def _propose(url: str, n: int) -> float:
    async with _executor(url, approval_mode=False) as ex:  # opening migrates: not timed
        start = time.perf_counter()
        for i in range(n):
            await ex.propose_action("noop", {}, reason=f"throughput {i}")
        return time.perf_counter() - start


def spawn_runner(url: str, log: Any, *, until_idle: bool) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "operator_core.cli", "--db", url, "--subject", NOOP_SUBJECT]
    args += ["run", "--concurrency", str(CONCURRENCY), "-q"]
    if until_idle:
        args.append("--until-idle")
    return subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=child_env())


OURS_WINDOW = (
    "SELECT MIN(started_at), MAX(completed_at), "
    "SUM(CASE WHEN success = 1 THEN 1 ELSE 0 END), COUNT(DISTINCT proposal_id), COUNT(*) "
    "FROM action_records"
)


def run_ours(url: str, n: int, runners: int, workdir: Path) -> Run:
    propose_s = asyncio.run(_propose(url, n))
    log_path = workdir / "runner.log"
    with open(log_path, "ab") as log:
        procs = [spawn_runner(url, log, until_idle=True) for _ in range(runners)]
        for proc in procs:
            if proc.wait(timeout=900) != 0:
                raise RuntimeError(f"runner failed; see {log_path}")
    first, last, done, distinct, records = _one(url, OURS_WINDOW)
    events = _one(url, "SELECT COUNT(*) FROM action_audit_log")[0]
    if done != n or distinct != n or records != n or events < 3 * n:
        raise RuntimeError(
            f"expected {n} actions completed once each with their audit events, got "
            f"{done} done, {records} records, {events} events"
        )
    return Run(propose_s, db_time(last) - db_time(first), n, events / n)


async def _approvals_ours(url: str, n: int, workdir: Path, seed: int) -> list[float]:
    rng = random.Random(seed)
    async with _executor(url, approval_mode=True) as ex:
        ids = [(await ex.propose_action("noop", {}, reason=f"approval {i}")).id for i in range(n)]
        with (
            serving(workdir / "runner.log", lambda log: spawn_runner(url, log, until_idle=False)),
            _reader(url) as conn,
        ):
            samples = []
            for pid in ids:
                await ex.approve_proposal(pid, "bench")
                approved, started = _wait_for(
                    lambda pid=pid: conn.execute(
                        "SELECT p.approved_at, r.started_at FROM action_proposals p "
                        "JOIN action_records r ON r.proposal_id = p.id WHERE p.id = %s",
                        (pid,),
                    ).fetchone(),
                    30,
                    f"action {pid} to start",
                )
                samples.append(db_time(started) - db_time(approved))
                await asyncio.sleep(rng.uniform(0, GAP))
    return samples[1:]


# ---------------------------------------------------------------------- procrastinate


def _peer_worker(url: str, mode: str) -> list[str]:
    return [sys.executable, "-m", "bench.procrastinate_app", mode, url]


async def _defer(url: str, n: int) -> float:
    from bench.procrastinate_app import make_app

    app = make_app(url)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()  # not timed, as our migration
        task = app.tasks["noop"]
        start = time.perf_counter()
        for _ in range(n):
            await task.defer_async()
        return time.perf_counter() - start


PEER_WINDOW = (
    "SELECT MIN(at) FILTER (WHERE type = 'started'), MAX(at) FILTER (WHERE type = 'succeeded'), "
    "COUNT(*) FILTER (WHERE type = 'succeeded'), COUNT(*) FILTER (WHERE type = 'started') "
    "FROM procrastinate_events"
)


def run_peer(url: str, n: int, workers: int, workdir: Path) -> Run:
    propose_s = asyncio.run(_defer(url, n))
    log_path = workdir / "procrastinate.log"
    with open(log_path, "ab") as log:
        procs = [
            subprocess.Popen(
                [*_peer_worker(url, "drain"), "--concurrency", str(CONCURRENCY)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(),
            )
            for _ in range(workers)
        ]
        for proc in procs:
            if proc.wait(timeout=900) != 0:
                raise RuntimeError(f"procrastinate worker failed; see {log_path}")
    first, last, done, started = _one(url, PEER_WINDOW)
    if done != n or started != n:
        raise RuntimeError(f"procrastinate: {done} of {n} jobs succeeded, {started} started")
    return Run(propose_s, (last - first).total_seconds(), n)


async def _approvals_peer(url: str, n: int, workdir: Path, seed: int) -> list[float]:
    from bench.procrastinate_app import make_app

    rng = random.Random(seed)
    app = make_app(url)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        task = app.tasks["noop"]
        with (
            serving(workdir / "procrastinate.log", lambda log: _peer_serve(url, log)),
            _reader(url) as conn,
        ):
            samples = []
            for _ in range(n):
                job = await task.defer_async()
                deferred, started = _wait_for(
                    lambda job=job: conn.execute(
                        "SELECT MIN(at) FILTER (WHERE type = 'deferred'), "
                        "MIN(at) FILTER (WHERE type = 'started') "
                        "FROM procrastinate_events WHERE job_id = %s "
                        "HAVING COUNT(*) FILTER (WHERE type = 'started') > 0",
                        (job,),
                    ).fetchone(),
                    30,
                    f"job {job} to start",
                )
                samples.append((started - deferred).total_seconds())
                await asyncio.sleep(rng.uniform(0, GAP))
    return samples[1:]


# ---------------------------------------------------------------------- the figures


def bench(runs: int, quick: bool, log=print) -> list[Figure]:
    n = 300 if quick else 5000
    samples = 30 if quick else 200
    group = f"PostgreSQL, {n:,} no-op actions, ours vs procrastinate"
    by_count: dict[int, tuple[Figure, Figure, Figure]] = {}
    for k in RUNNER_COUNTS:
        procs = f"{k} runner process{'es' if k > 1 else ''} × concurrency {CONCURRENCY}"
        by_count[k] = (
            Figure(group, f"propose (ours) / defer (peer), before {k}", "per s"),
            Figure(group, f"execute, {procs}", "per s"),
            Figure(
                group,
                f"end-to-end, {procs}",
                "actions/s",
                target="≥ 1.0x procrastinate",
                meets=lambda ratio: ratio >= 1.0,
                judge_ratio=True,
            ),
        )
    latency = f"PostgreSQL, approval → start across two processes, {samples} samples"
    p50 = Figure(latency, "p50", "ms")
    p99 = Figure(latency, "p99", "ms", target="≤ 50 ms", meets=lambda v: v <= 50)
    figures = [f for trio in by_count.values() for f in trio] + [p50, p99]
    for fig in figures:
        fig.peer = []
        fig.peer_label = "procrastinate"
    with server() as admin, tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
        workdir = Path(tmp)
        log(f"  server: {urlsplit(admin).hostname}:{urlsplit(admin).port}; logs in {workdir}")
        for i in range(runs):
            for k, (propose, execute, e2e) in by_count.items():
                order = ("ours", "peer") if (i + k) % 2 == 0 else ("peer", "ours")
                got: dict[str, Run] = {}
                for side in order:
                    with fresh_db(admin) as url:
                        run = run_ours if side == "ours" else run_peer
                        got[side] = run(url, n, k, workdir)
                ours, peer = got["ours"], got["peer"]
                for fig, a, b in (
                    (propose, ours.propose_rate, peer.propose_rate),
                    (execute, ours.execute_rate, peer.execute_rate),
                    (e2e, ours.end_to_end, peer.end_to_end),
                ):
                    fig.ours.append(a)
                    assert fig.peer is not None
                    fig.peer.append(b)
                log(
                    f"  run {i + 1}/{runs}, {k} process(es): ours {ours.end_to_end:.0f}/s "
                    f"(propose {ours.propose_rate:.0f}/s, execute {ours.execute_rate:.0f}/s, "
                    f"{ours.events_per_action:.1f} audit events each), procrastinate "
                    f"{peer.end_to_end:.0f}/s (defer {peer.propose_rate:.0f}/s, "
                    f"execute {peer.execute_rate:.0f}/s)"
                )
            with fresh_db(admin) as url:
                ours_lat = asyncio.run(_approvals_ours(url, samples + 1, workdir, i))
            with fresh_db(admin) as url:
                peer_lat = asyncio.run(_approvals_peer(url, samples + 1, workdir, i))
            for fig, q in ((p50, 50), (p99, 99)):
                fig.ours.append(percentile(ours_lat, q) * 1000)
                assert fig.peer is not None
                fig.peer.append(percentile(peer_lat, q) * 1000)
            log(
                f"  run {i + 1}/{runs}, approval → start: ours p50 {p50.ours[-1]:.1f} ms "
                f"p99 {p99.ours[-1]:.1f} ms; procrastinate p50 {p50.peer[-1]:.1f} ms "
                f"p99 {p99.peer[-1]:.1f} ms"
            )
    return figures
