"""Runner cycles side by side on PostgreSQL (db/shared.py): a cycle takes the write lock
shared, claims with FOR UPDATE SKIP LOCKED and appends its events at its end under the
chain lock. Real server, real connections, cycles on threads of their own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.clock import utcnow
from operator_core.db import audit
from operator_core.db.pg.connection import PgDatabase
from operator_core.db.pg.store import PgActionDB
from operator_core.db.pg.txn import BEGIN_WRITE
from operator_core.db.records import AttemptResult, Claim
from operator_core.db.runner_cycle import claim_tx, runner_cycle_tx
from operator_core.db.url import NOWHERE
from operator_core.errors import DatabaseError

from tests.support.subjects import TestSubject

LEASE = 60.0


async def _seed(url: str, make: Callable[[ActionExecutor], Any]) -> None:
    registry = ActionRegistry.from_subject(TestSubject())
    ex = ActionExecutor(NOWHERE, registry, approval_mode=False, db=PgActionDB(url))
    async with ex:
        await make(ex)
    await registry.subject.aclose()  # type: ignore[union-attr]


def seed(url: str, make: Callable[[ActionExecutor], Any]) -> None:
    asyncio.run(_seed(url, make))


def propose_ok(n: int) -> Callable[[ActionExecutor], Any]:
    async def make(ex: ActionExecutor) -> None:
        await ex.propose_actions([{"action_name": "ok", "reason": str(i)} for i in range(n)])

    return make


def cycle(db: PgDatabase, fn: Callable[..., Any], *args: Any) -> Any:
    """One runner cycle as PgStore runs it: the lock shared, events appended at the end."""
    return db.run_cycle(audit.flushed, fn, *args)


def rows(url: str, sql: str) -> list[Any]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def verify(url: str) -> tuple[bool, int, str]:
    db = PgDatabase(url)
    try:
        return db.run_txn(BEGIN_WRITE, audit.verify_chain)
    finally:
        db.close_sync()


def test_a_cycle_claims_past_rows_another_cycle_holds_without_waiting(pg_url: str) -> None:
    seed(pg_url, propose_ok(10))
    first, second, writer = (PgDatabase(pg_url, lock_timeout=2.0) for _ in range(3))
    holding, release = threading.Event(), threading.Event()

    def hold(conn: Any) -> list[Claim]:
        claims = claim_tx(conn, "runner-a", 4, LEASE, utcnow(), None)
        holding.set()
        assert release.wait(30)
        return claims

    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(cycle, first, hold)
        assert holding.wait(30)
        start = time.monotonic()
        claims_b = cycle(second, claim_tx, "runner-b", 4, LEASE, utcnow(), None, None, None)
        took = time.monotonic() - start
        # The control: an exclusive write waits for the open cycle until its lock times out.
        writer._lock_timeout_ms = 300
        with pytest.raises(DatabaseError, match="locked by another process"):
            writer.run_txn(BEGIN_WRITE, lambda conn: conn.execute("SELECT 1"))
        release.set()
        claims_a = held.result(30)
    for db in (first, second, writer):
        db.close_sync()
    ids_a = [c.proposal.id for c in claims_a]
    ids_b = [c.proposal.id for c in claims_b]
    assert took < 1.0, took  # not the lock timeout: it did not wait for the first cycle
    assert len(ids_a) == len(ids_b) == 4  # the second batch filled past the held rows
    assert not set(ids_a) & set(ids_b)
    assert sorted(ids_a + ids_b) == [
        r[0]
        for r in rows(
            pg_url, "SELECT id FROM action_proposals WHERE status = 'executing' ORDER BY id"
        )
    ]
    started = rows(
        pg_url,
        "SELECT proposal_id FROM action_audit_log WHERE event_type = 'execution_started'",
    )
    assert sorted(r[0] for r in started) == sorted(ids_a + ids_b)
    ok, count, message = verify(pg_url)
    assert ok, message


def _workflows_and_flaky(ex: ActionExecutor) -> Any:
    async def make() -> None:
        items: list[dict[str, Any]] = []
        for i in range(160):
            if i % 4 == 0:
                items.append({"action_name": "flaky", "parameters": {"times": 1}, "reason": "f"})
            else:
                items.append({"action_name": "ok", "reason": str(i)})
        await ex.propose_actions(items)
        for w in range(15):
            steps = [
                {"action_name": "ok", "reason": "a"},
                {"action_name": "flaky", "parameters": {"times": 1}, "reason": "b"},
                {"action_name": "ok", "reason": "c"},
            ]
            await ex.propose_workflow(f"wf{w}", "d", steps)

    return make()


def _results(claims: Sequence[Claim]) -> list[tuple[Claim, AttemptResult]]:
    """What the test subject would say: ``flaky`` fails its first attempt (retry at once)."""
    out = []
    for claim in claims:
        if claim.proposal.action_name == "flaky" and claim.record.attempt == 1:
            out.append((claim, AttemptResult(False, None, "flaky", True, 0.0)))
        else:
            out.append((claim, AttemptResult(True, {"attempt": claim.record.attempt})))
    return out


def _runner(url: str, name: str, stop: threading.Event) -> int:
    """Cycles until nothing is left (or ``stop``): each records the last batch and claims."""
    db = PgDatabase(url, lock_timeout=10.0)
    cycles = 0
    finished: list[tuple[Claim, AttemptResult]] = []
    idle = 0
    try:
        while not stop.is_set() and idle < 20:
            claims, _, _ = cycle(db, runner_cycle_tx, name, finished, 5, LEASE, utcnow())
            cycles += 1
            finished = _results(claims)
            idle = 0 if claims or finished else idle + 1
            if not claims:
                time.sleep(0.02)
    finally:
        db.close_sync()
    return cycles


def test_cycles_side_by_side_never_claim_one_action_twice(pg_url: str) -> None:
    seed(pg_url, _workflows_and_flaky)
    total = rows(pg_url, "SELECT count(*) FROM action_proposals")[0][0]
    stop = threading.Event()
    with ThreadPoolExecutor(6) as pool:
        runs = [pool.submit(_runner, pg_url, f"runner-{i}", stop) for i in range(6)]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            left = rows(pg_url, "SELECT count(*) FROM action_proposals WHERE status <> 'completed'")
            if left[0][0] == 0:
                break
            time.sleep(0.1)
        stop.set()
        for run in runs:
            run.result(30)
    assert rows(pg_url, "SELECT status, count(*) FROM action_proposals GROUP BY status") == [
        ("completed", total)
    ]
    records = rows(
        pg_url,
        "SELECT r.proposal_id, r.attempt, r.started_at, r.completed_at, p.action_name "
        "FROM action_records r JOIN action_proposals p ON p.id = r.proposal_id "
        "ORDER BY r.proposal_id, r.attempt",
    )
    attempts: dict[int, list[Any]] = defaultdict(list)
    for pid, attempt, started, completed, name in records:
        attempts[pid].append((attempt, started, completed, name))
    assert len(attempts) == total
    for pid, tries in attempts.items():
        expected = 2 if tries[0][3] == "flaky" else 1
        assert [t[0] for t in tries] == list(range(1, expected + 1)), (pid, tries)
        for before, after in zip(tries, tries[1:], strict=False):
            assert before[2] is not None and before[2] <= after[1], (pid, tries)  # no overlap
    # Each action's events in order: started, (retry, started), completed.
    events: dict[int, list[str]] = defaultdict(list)
    for pid, kind in rows(
        pg_url,
        "SELECT proposal_id, event_type FROM action_audit_log WHERE proposal_id IS NOT NULL "
        "AND event_type IN ('execution_started', 'retry_scheduled', 'completed') ORDER BY id",
    ):
        events[pid].append(kind)
    for pid, tries in attempts.items():
        want = ["execution_started", "completed"]
        if tries[0][3] == "flaky":
            want = ["execution_started", "retry_scheduled", *want]
        assert events[pid] == want, (pid, events[pid])
    assert rows(pg_url, "SELECT count(*) FROM workflows WHERE status <> 'completed'") == [(0,)]
    ok, _, message = verify(pg_url)
    assert ok, message


def test_a_budgeted_claim_runs_alone_and_stays_exact(pg_url: str) -> None:
    seed(pg_url, propose_ok(30))
    budgets = {"ok": (5, 3600.0)}
    barrier = threading.Barrier(6)

    def claim(i: int) -> int:
        db = PgDatabase(pg_url, lock_timeout=10.0)
        try:
            barrier.wait(10)
            got = 0
            for _ in range(3):
                got += len(cycle(db, claim_tx, f"r{i}", 3, LEASE, utcnow(), None, None, budgets))
            return got
        finally:
            db.close_sync()

    with ThreadPoolExecutor(6) as pool:
        claimed = sum(pool.map(claim, range(6)))
    assert claimed == 5
    assert rows(pg_url, "SELECT count(*) FROM action_records") == [(5,)]
    ok, _, message = verify(pg_url)
    assert ok, message


def test_no_action_starts_after_the_kill_switch_is_pulled(pg_url: str) -> None:
    seed(pg_url, propose_ok(400))
    stop = threading.Event()

    async def pull() -> None:
        db = PgActionDB(pg_url)
        async with db:
            await db.kill_switch("operator@elsewhere")

    with ThreadPoolExecutor(4) as pool:
        runs = [pool.submit(_runner, pg_url, f"runner-{i}", stop) for i in range(4)]
        while rows(pg_url, "SELECT count(*) FROM action_records")[0][0] < 40:
            time.sleep(0.01)
        asyncio.run(pull())
        time.sleep(0.5)  # the runners keep cycling: none may claim now
        stop.set()
        for run in runs:
            run.result(30)
    order = [
        r[0]
        for r in rows(
            pg_url,
            "SELECT event_type FROM action_audit_log "
            "WHERE event_type IN ('kill_switch', 'execution_started') ORDER BY id",
        )
    ]
    assert order.count("kill_switch") == 1
    assert "execution_started" not in order[order.index("kill_switch") :]
    # Every attempt that was ever opened said so in the chain before the pull.
    started = order.index("kill_switch")
    assert rows(pg_url, "SELECT count(*) FROM action_records") == [(started,)]
    assert rows(pg_url, "SELECT count(*) FROM action_proposals WHERE status = 'validated'") == [
        (0,)
    ]
    ok, _, message = verify(pg_url)
    assert ok, message
