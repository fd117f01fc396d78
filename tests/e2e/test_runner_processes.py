"""Real ``operator run`` processes on one database: no double execution, recovery after
SIGKILL, graceful SIGTERM, the kill switch and approvals from another process."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from operator_core.actions.executor import ActionExecutor

from tests.e2e.conftest import cli_env, query, run_cli, seed, start_runner, wait_for


def started(log: Path) -> bool:
    """The runner printed its banner: its database is open and it is about to claim."""
    return log.exists() and b"runner " in log.read_bytes()


def status_of(db: Path, proposal_id: int) -> str:
    return str(query(db, "SELECT status FROM action_proposals WHERE id = ?", (proposal_id,))[0][0])


def records_of(db: Path, proposal_id: int) -> list[dict[str, object]]:
    return [
        dict(r)
        for r in query(
            db,
            "SELECT * FROM action_records WHERE proposal_id = ? ORDER BY attempt",
            (proposal_id,),
        )
    ]


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def test_two_runner_processes_never_execute_the_same_action_twice(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    seed(db, lambda ex: ex.db.data_version())
    logs = [tmp_path / "runner-a.log", tmp_path / "runner-b.log"]
    for log in logs:
        procs.append(start_runner(db, log, "--concurrency", "3", "--lease-seconds", "5"))
    for log in logs:
        wait_for(lambda log=log: started(log), 15, what=f"{log.name} to start")

    async def propose_all(ex: ActionExecutor) -> list[int]:
        ids = []
        for i in range(60):
            p = await ex.propose_action("ok", {"seconds": 0.05}, f"batch {i}")
            ids.append(p.id)
        for i in range(6):
            p = await ex.propose_action("flaky", {"times": 1}, f"flaky {i}")
            ids.append(p.id)
        return ids

    ids = seed(db, propose_all)
    wait_for(
        lambda: (
            query(db, "SELECT COUNT(*) FROM action_proposals WHERE status = 'completed'")[0][0]
            == len(ids)
        ),
        40,
        interval=0.1,
        what="every action to complete",
    )
    for proc in procs:
        assert stop(proc) == 0
    for log in logs:
        assert b"Traceback" not in log.read_bytes()

    records = query(db, "SELECT * FROM action_records ORDER BY id")
    by_action: dict[int, list[dict[str, object]]] = defaultdict(list)
    for r in records:
        by_action[r["proposal_id"]].append(dict(r))
    for pid in ids[:60]:
        attempts = by_action[pid]
        assert [(a["attempt"], a["success"]) for a in attempts] == [(1, 1)], pid
    for pid in ids[60:]:
        attempts = by_action[pid]
        assert [(a["attempt"], a["success"]) for a in attempts] == [(1, 0), (2, 1)], pid
        assert str(attempts[1]["started_at"]) >= str(attempts[0]["completed_at"])
    # Both processes took part, so the claims really did contend.
    assert len({r["runner"] for r in records}) == 2
    started_events = query(
        db,
        "SELECT proposal_id, COUNT(*) FROM action_audit_log WHERE "
        "event_type = 'execution_started' GROUP BY proposal_id",
    )
    assert {r[0]: r[1] for r in started_events} == {
        pid: (1 if pid in ids[:60] else 2) for pid in ids
    }


def test_runner_killed_mid_action_is_recovered_by_the_next(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    async def propose(ex: ActionExecutor) -> tuple[int, int]:
        again = await ex.propose_action("slow", {"seconds": 1.0}, "retried after loss")
        once = await ex.propose_action("slow", {"seconds": 1.0}, "no retries left", max_retries=0)
        assert again.id is not None and once.id is not None
        return again.id, once.id

    again, once = seed(db, propose)
    first = start_runner(db, tmp_path / "first.log", "--lease-seconds", "1")
    procs.append(first)
    wait_for(
        lambda: (
            query(db, "SELECT COUNT(*) FROM action_proposals WHERE status = 'executing'")[0][0] == 2
        ),
        15,
        what="both actions to start",
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert status_of(db, again) == "executing"  # what a dead runner leaves behind

    second = start_runner(db, tmp_path / "second.log", "--lease-seconds", "1")
    procs.append(second)
    wait_for(
        lambda: status_of(db, again) == "completed",
        20,
        interval=0.05,
        what="the lost action to be retried and completed",
    )
    wait_for(lambda: status_of(db, once) == "failed", 5, what="the other to fail for good")
    assert stop(second) == 0

    lost, retried = records_of(db, again)
    assert lost["success"] == 0 and str(lost["error_message"]).startswith("runner lost")
    assert lost["completed_at"] is not None
    assert retried["attempt"] == 2 and retried["success"] == 1
    assert retried["runner"] != lost["runner"]

    [only] = records_of(db, once)
    assert only["success"] == 0 and str(only["error_message"]).startswith("runner lost")
    row = query(db, "SELECT * FROM action_proposals WHERE id = ?", (once,))[0]
    assert row["next_retry_at"] is None and str(row["last_error"]).startswith("runner lost")
    assert row["claimed_by"] is None and row["lease_expires_at"] is None

    events = {
        (r[0], r[1]) for r in query(db, "SELECT proposal_id, event_type FROM action_audit_log")
    }
    assert {
        (again, "runner_lost"),
        (again, "retry_scheduled"),
        (again, "completed"),
        (once, "runner_lost"),
        (once, "retry_exhausted"),
    } <= events
    assert "recovered" in (tmp_path / "second.log").read_text()


def test_sigterm_finishes_short_work_and_records_the_long_one(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    async def propose(ex: ActionExecutor) -> tuple[int, int]:
        short = await ex.propose_action("slow", {"seconds": 0.4}, "finishes in the grace")
        long = await ex.propose_action("slow", {"seconds": 60}, "outlasts the grace")
        assert short.id is not None and long.id is not None
        return short.id, long.id

    short, long = seed(db, propose)
    runner = start_runner(
        db, tmp_path / "runner.log", "--grace-seconds", "1", "--lease-seconds", "5"
    )
    procs.append(runner)
    wait_for(
        lambda: (
            query(db, "SELECT COUNT(*) FROM action_proposals WHERE status = 'executing'")[0][0] == 2
        ),
        15,
        what="both actions to start",
    )
    began = time.monotonic()
    assert stop(runner) == 0
    assert time.monotonic() - began < 5
    log = (tmp_path / "runner.log").read_text()
    assert "Traceback" not in log

    assert status_of(db, short) == "completed"
    [record] = records_of(db, long)
    assert record["completed_at"] is not None and record["success"] == 0
    assert "shutdown" in str(record["error_message"])
    row = query(db, "SELECT * FROM action_proposals WHERE id = ?", (long,))[0]
    assert row["status"] != "executing"
    assert row["claimed_by"] is None and row["lease_expires_at"] is None
    assert query(db, "SELECT COUNT(*) FROM action_records WHERE completed_at IS NULL")[0][0] == 0


def test_kill_switch_from_the_cli_cancels_an_executing_action_within_a_second(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    async def propose(ex: ActionExecutor) -> int:
        p = await ex.propose_action("slow", {"seconds": 60}, "long job")
        assert p.id is not None
        return p.id

    pid = seed(db, propose)
    runner = start_runner(db, tmp_path / "runner.log", "--lease-seconds", "5")
    procs.append(runner)
    wait_for(lambda: status_of(db, pid) == "executing", 15, what="the action to start")

    killed = run_cli(db, "kill-switch", "--yes", "--json")
    assert killed.returncode == 0, killed.stderr
    pulled = time.monotonic()
    wait_for(lambda: status_of(db, pid) == "cancelled", 3, what="the runner to cancel it")
    assert time.monotonic() - pulled < 1.5

    [record] = records_of(db, pid)
    assert record["success"] == 0 and "kill switch" in str(record["error_message"])
    row = query(db, "SELECT * FROM action_proposals WHERE id = ?", (pid,))[0]
    assert row["cancel_reason"] == "kill switch"
    events = [
        r["event_data"]
        for r in query(
            db,
            "SELECT event_data FROM action_audit_log WHERE proposal_id = ? AND event_type = "
            "'cancelled'",
            (pid,),
        )
    ]
    assert len(events) == 1 and "executing" in events[0]
    assert runner.poll() is None  # the runner stays up, idle in OBSERVE mode
    assert stop(runner) == 0


def test_cli_approval_wakes_an_idle_runner_promptly(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    async def propose(ex: ActionExecutor) -> int:
        p = await ex.propose_action("ok", {}, "waits for a human")
        assert p.id is not None
        return p.id

    pid = seed(db, propose, approval_mode=True)
    env = cli_env(tmp_path, OPERATOR_APPROVAL_MODE="on")
    log = tmp_path / "runner.log"
    runner = start_runner(db, log, "--lease-seconds", "5", env=env)
    procs.append(runner)
    wait_for(lambda: started(log), 15, what="the runner to start")
    time.sleep(0.3)  # let it settle into its idle wait
    assert records_of(db, pid) == []

    approved = run_cli(db, "approve", str(pid), env=env)
    assert approved.returncode == 0, approved.stderr
    decided = time.monotonic()
    wait_for(lambda: status_of(db, pid) == "completed", 5, what="the approved action to run")
    assert time.monotonic() - decided < 2.0
    assert stop(runner) == 0


def test_cli_cancel_stops_running_action_and_workflow_step(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    async def propose(ex: ActionExecutor) -> tuple[int, int, list[int]]:
        single = await ex.propose_action("slow", {"seconds": 60}, "long job")
        wf = await ex.propose_workflow(
            "chain",
            "slow then quick",
            [
                {"action_name": "slow", "parameters": {"seconds": 60}},
                {"action_name": "ok"},
            ],
        )
        steps = [s.id for s in await ex.db.list_workflow_actions(wf)]
        assert single.id is not None and all(steps)
        return single.id, wf, steps  # type: ignore[return-value]

    single, wf, (first, second) = seed(db, propose)
    runner = start_runner(db, tmp_path / "runner.log", "--concurrency", "2")
    procs.append(runner)
    wait_for(
        lambda: status_of(db, single) == "executing" and status_of(db, first) == "executing",
        15,
        what="both long actions to start",
    )

    stopped = run_cli(db, "cancel", str(single))
    assert stopped.returncode == 0, stopped.stderr
    assert "stop requested" in stopped.stdout
    assert run_cli(db, "cancel", str(wf), "--workflow").returncode == 0
    asked = time.monotonic()
    wait_for(
        lambda: status_of(db, single) == "cancelled" and status_of(db, first) == "cancelled",
        3,
        what="the runner to stop both",
    )
    assert time.monotonic() - asked < 1.5

    for pid in (single, first):
        [record] = records_of(db, pid)
        assert record["success"] == 0 and str(record["error_message"]).startswith("cancelled")
    assert status_of(db, second) == "cancelled" and records_of(db, second) == []
    assert query(db, "SELECT status FROM workflows WHERE id = ?", (wf,))[0][0] == "cancelled"
    assert query(db, "SELECT mode FROM safety_state")[0][0] == "execute"
    assert stop(runner) == 0
