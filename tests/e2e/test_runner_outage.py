"""A runner is a daemon (issue 20, item 8): when another process holds the write lock past
the busy timeout, or the disk is full, a real ``operator run`` keeps the outcome it could not
record, logs once, backs off, records it when it can (the action ran once), claims nothing
new meanwhile, and goes on; it exits only on a signal."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db.actions import PAGE_SIZE

from tests.conftest import FAST_RETRY
from tests.e2e.conftest import cli_env, query, seed, start_runner, wait_for
from tests.support.odd_subject import OddSubject

pytestmark = pytest.mark.sqlite_only(
    "SQLite's write lock and a full file (PostgreSQL's outage: test_pg_runner_restart)"
)

T = TypeVar("T")
ODD = "tests.support.odd_subject:OddSubject"


def started(log: Path) -> bool:
    return log.exists() and b"runner " in log.read_bytes()


def status_of(db: Path, pid: int) -> str:
    return str(query(db, "SELECT status FROM action_proposals WHERE id = ?", (pid,))[0][0])


def log_lines(log: Path, word: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if word in line]


def seed_odd(db: Path, fn: Callable[[ActionExecutor], Awaitable[T]]) -> T:
    async def go() -> T:
        ex = ActionExecutor(
            db,
            ActionRegistry.from_subject(OddSubject()),
            approval_mode=False,
            retry_config=FAST_RETRY,
        )
        async with ex:
            return await fn(ex)

    return asyncio.run(go())


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def test_a_write_lock_held_past_the_busy_timeout_is_waited_out(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    seed(db, lambda ex: ex.db.data_version())
    log = tmp_path / "runner.log"
    runner = start_runner(db, log, env=cli_env(tmp_path, OPERATOR_BUSY_TIMEOUT="1"))
    procs.append(runner)
    wait_for(lambda: started(log), 15, what="the runner to start")

    async def propose(ex: ActionExecutor) -> int:
        return (await ex.propose_action("slow", {"seconds": 0.5}, "finishes under the lock")).id

    first = seed(db, propose)
    wait_for(lambda: status_of(db, first) == "executing", 15, what="the action to start")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # The attempt finishes while the lock is held: its outcome waits, three times the
        # busy timeout (a runner used to exit after one).
        time.sleep(3)
        assert runner.poll() is None, log.read_text()
        assert status_of(db, first) == "executing"  # readers see the last commit
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_for(lambda: status_of(db, first) == "completed", 20, what="the outcome recorded")
    later = seed(db, lambda ex: ex.propose_action("ok", {}, "proposed after the lock"))
    wait_for(lambda: status_of(db, later.id) == "completed", 20, what="later work to run")
    assert runner.poll() is None
    assert stop(runner) == 0

    text = log.read_text()
    assert "Traceback" not in text
    assert len(log_lines(log, "locked")) == 1, text  # once, not a line per try
    assert len(log_lines(log, "usable again")) == 1, text
    records = query(db, "SELECT success FROM action_records WHERE proposal_id = ?", (first,))
    assert [r[0] for r in records] == [1]


def test_an_outcome_kept_through_a_full_disk_is_recorded_once_and_run_once(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """SQLite reports a full disk when the runner's connection may not grow the file (a
    test-only cap on its pages); another process fills the file to that cap, then frees it."""
    seed_odd(db, lambda ex: ex.db.data_version())
    counted, gate = tmp_path / "executions", tmp_path / "gate"
    pages = query(db, "PRAGMA page_count")[0][0]
    cap = pages + 200  # room to start; none once the file is padded past it
    env = cli_env(
        tmp_path,
        OPERATOR_TEST_MAX_PAGE_COUNT=str(cap),
        ODD_COUNT_FILE=str(counted),
        ODD_GATE_FILE=str(gate),
    )
    log = tmp_path / "runner.log"
    with log.open("wb") as err:
        runner = subprocess.Popen(
            [*_cli(db), "run", "--lease-seconds", "30"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    procs.append(runner)
    wait_for(lambda: started(log), 15, what="the runner to start")

    first = seed_odd(db, lambda ex: ex.propose_action("count", {}, "runs once")).id
    wait_for(lambda: counted.exists(), 15, what="the action to run")
    pad = sqlite3.connect(db, isolation_level=None)
    try:
        pad.execute("CREATE TABLE pad (b BLOB)")
        pad.execute("INSERT INTO pad VALUES (zeroblob(?))", ((cap + 50) * PAGE_SIZE,))
        gate.touch()  # the action finishes now; its result needs pages the runner cannot get
        wait_for(lambda: log_lines(log, "full"), 15, what="the runner to meet the full disk")
        second = seed_odd(db, lambda ex: ex.propose_action("ok", {}, "proposed while full")).id
        time.sleep(1.5)  # several tries meanwhile (backing off)
        assert runner.poll() is None, log.read_text()
        assert status_of(db, first) == "executing"  # held, not lost
        assert status_of(db, second) == "validated"  # nothing new claimed meanwhile
        pad.execute("DROP TABLE pad")  # space returns
    finally:
        pad.close()
    wait_for(lambda: status_of(db, first) == "completed", 20, what="the outcome recorded")
    wait_for(lambda: status_of(db, second) == "completed", 20, what="new work to run")
    assert runner.poll() is None
    assert stop(runner) == 0

    assert counted.read_text().splitlines() == [str(first)]  # ran exactly once
    records = query(db, "SELECT success FROM action_records WHERE proposal_id = ?", (first,))
    assert [r[0] for r in records] == [1]
    text = log.read_text()
    assert "Traceback" not in text
    assert len(log_lines(log, "full")) == 1, text
    assert len(log_lines(log, "usable again")) == 1, text


def _cli(db: Path) -> list[str]:
    from tests.e2e.conftest import cli_argv

    return cli_argv(db, subject=ODD)


def test_a_runner_that_cannot_record_keeps_holding_its_action(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """While its outcome waits (a full disk for it, longer than its lease), the runner keeps
    renewing the action's lease: a second runner, who can write, never finds it lost and
    runs it again."""
    seed_odd(db, lambda ex: ex.db.data_version())
    counted, gate = tmp_path / "executions", tmp_path / "gate"
    cap = query(db, "PRAGMA page_count")[0][0] + 200
    env = cli_env(
        tmp_path,
        OPERATOR_TEST_MAX_PAGE_COUNT=str(cap),
        ODD_COUNT_FILE=str(counted),
        ODD_GATE_FILE=str(gate),
    )
    capped_log, free_log = tmp_path / "capped.log", tmp_path / "free.log"
    with capped_log.open("wb") as err:
        capped = subprocess.Popen(
            [*_cli(db), "run", "--lease-seconds", "1.5"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    procs.append(capped)
    wait_for(lambda: started(capped_log), 15, what="the first runner to start")
    first = seed_odd(db, lambda ex: ex.propose_action("count", {}, "runs once")).id
    wait_for(lambda: counted.exists(), 15, what="the action to run")
    pad = sqlite3.connect(db, isolation_level=None)
    try:
        pad.execute("CREATE TABLE pad (b BLOB)")
        pad.execute("INSERT INTO pad VALUES (zeroblob(?))", ((cap + 50) * PAGE_SIZE,))
        gate.touch()
        wait_for(lambda: log_lines(capped_log, "full"), 15, what="the full disk")
        free_env = cli_env(tmp_path, ODD_COUNT_FILE=str(counted), ODD_GATE_FILE=str(gate))
        with free_log.open("wb") as err:
            free = subprocess.Popen(
                [*_cli(db), "run", "--lease-seconds", "1.5"],
                env=free_env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        procs.append(free)
        wait_for(lambda: started(free_log), 15, what="the second runner to start")
        leases = {
            query(db, "SELECT lease_expires_at FROM action_proposals WHERE id = ?", (first,))[0][0]
        }
        # Four lease periods: the lease moves on, and the action stays with its runner.
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            row = query(
                db, "SELECT status, lease_expires_at FROM action_proposals WHERE id = ?", (first,)
            )[0]
            assert row[0] == "executing", row[0]
            leases.add(row[1])
            time.sleep(0.2)
        assert len(leases) >= 3, leases
        pad.execute("DROP TABLE pad")
    finally:
        pad.close()
    wait_for(lambda: status_of(db, first) == "completed", 20, what="the outcome recorded")
    assert stop(capped) == 0 and stop(free) == 0
    assert counted.read_text().splitlines() == [str(first)]  # ran exactly once
    events = [
        r[0]
        for r in query(
            db, "SELECT event_type FROM action_audit_log WHERE proposal_id = ?", (first,)
        )
    ]
    assert "runner_lost" not in events, events
    assert "Traceback" not in capped_log.read_text() + free_log.read_text()


def test_a_signal_during_the_trouble_stops_the_runner_and_says_what_was_not_recorded(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """SIGTERM still stops the runner while its outcome cannot be recorded: it tries for the
    grace period, then exits and names the action, whose committed state is kept."""
    seed_odd(db, lambda ex: ex.db.data_version())
    counted, gate = tmp_path / "executions", tmp_path / "gate"
    cap = query(db, "PRAGMA page_count")[0][0] + 200
    env = cli_env(
        tmp_path,
        OPERATOR_TEST_MAX_PAGE_COUNT=str(cap),
        ODD_COUNT_FILE=str(counted),
        ODD_GATE_FILE=str(gate),
    )
    log = tmp_path / "runner.log"
    with log.open("wb") as err:
        runner = subprocess.Popen(
            [*_cli(db), "run", "--grace-seconds", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    procs.append(runner)
    wait_for(lambda: started(log), 15, what="the runner to start")
    first = seed_odd(db, lambda ex: ex.propose_action("count", {}, "runs once")).id
    wait_for(lambda: counted.exists(), 15, what="the action to run")
    pad = sqlite3.connect(db, isolation_level=None)
    try:
        pad.execute("CREATE TABLE pad (b BLOB)")
        pad.execute("INSERT INTO pad VALUES (zeroblob(?))", ((cap + 50) * PAGE_SIZE,))
        gate.touch()
        wait_for(lambda: log_lines(log, "full"), 15, what="the full disk")
        assert stop(runner) == 0
    finally:
        pad.close()
    assert status_of(db, first) == "executing"  # as committed; its lease runs out later
    [line] = log_lines(log, "not recorded")
    assert f"[{first}]" in line
    assert "Traceback" not in log.read_text()


def test_a_stored_delay_no_time_can_hold_fails_its_step_not_the_runner(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """The issue's case on a database an older version wrote: step 2 of a workflow waits
    99999999999 days. Every runner reaching it used to die with an OverflowError (and the
    next recovered it and died again); now the step fails, its workflow fails, and the
    runner goes on."""

    async def propose(ex: ActionExecutor) -> list[int]:
        wf = await ex.propose_workflow("big", "d", [{"action_name": "ok"}] * 2)
        return [p.id for p in await ex.db.list_workflow_actions(wf)]

    steps = seed(db, propose)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(
            "UPDATE action_proposals SET delay_seconds = ? WHERE id = ?",
            (99999999999 * 86400.0, steps[1]),
        )
    finally:
        conn.close()
    log = tmp_path / "runner.log"
    runner = start_runner(db, log)
    procs.append(runner)
    wait_for(lambda: status_of(db, steps[1]) == "failed", 20, what="step 2 to fail")
    assert status_of(db, steps[0]) == "completed"
    assert query(db, "SELECT status FROM workflows")[0][0] == "failed"
    later = seed(db, lambda ex: ex.propose_action("ok", {}, "proposed afterwards"))
    wait_for(lambda: status_of(db, later.id) == "completed", 20, what="later work to run")
    assert runner.poll() is None
    assert stop(runner) == 0
    assert "Traceback" not in log.read_text()
    error = query(db, "SELECT last_error FROM action_proposals WHERE id = ?", (steps[1],))[0][0]
    assert "delay" in error and "OverflowError" in error
