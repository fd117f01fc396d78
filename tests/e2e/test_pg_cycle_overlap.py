"""Four runner processes on one PostgreSQL database, their cycles side by side (the write lock
shared, db/shared.py), while other connections propose, approve and cancel: the cycles do
overlap, no action runs twice, no deadlock, nothing but clean runner logs, and the audit
chain verifies with each action's events in order."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db.pg.store import PgActionDB
from operator_core.db.pg.txn import WRITE_LOCK
from operator_core.db.url import NOWHERE
from operator_core.errors import OperatorError

from tests.e2e.conftest import cli_env, run_cli
from tests.support.subjects import TestSubject

RUNNERS = 4
PROPOSERS = 3
ROUNDS = 12  # per proposer: a batch of actions and one workflow each round
BATCH = 8
SUBJECT = "tests.support.subjects:TestSubject"

# Runner cycles holding the write lock shared at this moment (pg_locks: an advisory lock on
# a bigint key is classid = its high 32 bits, objid = its low 32 bits, objsubid = 1).
SHARED_HOLDERS_SQL = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND mode = 'ShareLock' AND classid = %s AND objid = %s AND objsubid = 1 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
DEADLOCKS_SQL = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"


def rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


async def propose(url: str, k: int, cancelled: set[int]) -> None:
    """Rounds of proposals (ok and flaky actions, a three-step workflow), each approved on
    its own, some cancelled before approval (``cancelled``), some after."""
    registry = ActionRegistry.from_subject(TestSubject())
    ex = ActionExecutor(NOWHERE, registry, approval_mode=True, db=PgActionDB(url))
    async with ex:
        for r in range(ROUNDS):
            items = [
                {"action_name": "flaky", "parameters": {"times": 1}, "reason": "f"}
                if i % 4 == 0
                else {"action_name": "ok", "reason": f"{k}.{r}.{i}"}
                for i in range(BATCH)
            ]
            proposals = await ex.propose_actions(items)
            for i, p in enumerate(proposals):
                assert p.id is not None
                if i == 3:
                    await ex.cancel_proposal(p.id, "canceller", "not needed")
                    cancelled.add(p.id)
                    continue
                await ex.approve_proposal(p.id, "approver")
                if i == 6:
                    # Refused once it has finished; asked of a running action, a stop that
                    # may come after it completed: either way it ends completed or cancelled.
                    with contextlib.suppress(OperatorError):
                        await ex.cancel_proposal(p.id, "canceller", "changed my mind")
            steps = [
                {"action_name": "ok", "reason": "a"},
                {"action_name": "flaky", "parameters": {"times": 1}, "reason": "b"},
                {"action_name": "ok", "reason": "c"},
            ]
            workflow_id = await ex.propose_workflow(f"wf {k}.{r}", "d", steps)
            await ex.approve_workflow(workflow_id, "approver")
    await registry.subject.aclose()  # type: ignore[union-attr]


async def propose_all(url: str, cancelled: set[int]) -> None:
    await asyncio.gather(*(propose(url, k, cancelled) for k in range(PROPOSERS)))


def sample_overlap(url: str, stop: threading.Event, seen: list[int]) -> None:
    high, low = WRITE_LOCK >> 32, WRITE_LOCK & 0xFFFFFFFF
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            ((holders,),) = conn.execute(SHARED_HOLDERS_SQL, (high, low)).fetchall()
            seen.append(int(holders))
            time.sleep(0.002)


def test_four_runners_overlap_their_cycles_safely(tmp_path: Path, pg_url: str) -> None:
    env = cli_env(tmp_path)
    policy = subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", pg_url, "policy", "set"]
        + ["approval-mode", "on"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert policy.returncode == 0, policy.stderr
    ((deadlocks_before,),) = rows(pg_url, DEADLOCKS_SQL)
    logs = [tmp_path / f"runner{i}.log" for i in range(RUNNERS)]
    runners = []
    for log in logs:
        with log.open("wb") as err:
            runners.append(
                subprocess.Popen(
                    [sys.executable, "-m", "operator_core.cli", "--db", pg_url]
                    + ["--subject", SUBJECT, "run", "--concurrency", "8", "--quiet"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
    stop, seen = threading.Event(), []
    sampler = threading.Thread(target=sample_overlap, args=(pg_url, stop, seen))
    sampler.start()
    cancelled: set[int] = set()
    try:
        asyncio.run(propose_all(pg_url, cancelled))
        deadline = time.monotonic() + 120
        settled_sql = (
            "SELECT count(*) FROM action_proposals WHERE status NOT IN ('completed', 'cancelled')"
        )
        while rows(pg_url, settled_sql) != [(0,)] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        sampler.join()
        for runner in runners:
            runner.send_signal(signal.SIGTERM)
        for runner in runners:
            runner.wait(timeout=60)
    for runner, log in zip(runners, logs, strict=True):
        text = log.read_text()
        assert runner.returncode == 0, text
        assert "error" not in text.lower() and "traceback" not in text.lower(), text
    assert rows(pg_url, settled_sql) == [(0,)]
    # The cycles really ran side by side: two or more held the lock at once.
    assert max(seen) >= 2, f"at most {max(seen)} cycle(s) at once in {len(seen)} samples"
    time.sleep(1.0)  # the statistics of the runners' last transactions are flushed
    ((deadlocks_after,),) = rows(pg_url, DEADLOCKS_SQL)
    assert deadlocks_after == deadlocks_before

    statuses = dict(rows(pg_url, "SELECT id, status FROM action_proposals"))
    names = dict(rows(pg_url, "SELECT id, action_name FROM action_proposals"))
    assert {pid for pid, s in statuses.items() if s == "cancelled"} >= cancelled
    tries: dict[int, list[tuple[int, str, str | None]]] = defaultdict(list)
    for pid, attempt, started, completed in rows(
        pg_url,
        "SELECT proposal_id, attempt, started_at, completed_at FROM action_records "
        "ORDER BY proposal_id, attempt",
    ):
        tries[pid].append((attempt, started, completed))
    for pid, status in statuses.items():
        mine = tries.get(pid, [])
        assert [a for a, _, _ in mine] == list(range(1, len(mine) + 1)), (pid, mine)
        for before, after in zip(mine, mine[1:], strict=False):
            assert before[2] is not None and before[2] <= after[1], (pid, mine)
        if status == "completed":
            assert len(mine) == (2 if names[pid] == "flaky" else 1), (pid, mine)
    events: dict[int, list[str]] = defaultdict(list)
    for pid, kind in rows(
        pg_url,
        "SELECT proposal_id, event_type FROM action_audit_log WHERE proposal_id IS NOT NULL "
        "AND event_type IN ('execution_started', 'retry_scheduled', 'completed') ORDER BY id",
    ):
        events[pid].append(kind)
    for pid, status in statuses.items():
        if status != "completed":
            continue
        want = ["execution_started", "completed"]
        if names[pid] == "flaky":
            want = ["execution_started", "retry_scheduled", *want]
        assert events[pid] == want, (pid, events[pid])
    verify = run_cli(
        pg_url, "audit", "verify", env=cli_env(tmp_path / "verifier"), subject=None, timeout=120
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("audit log OK: ")
