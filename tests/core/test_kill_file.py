"""The kill file (issue 20, item 3) and actions asked to stop that must never be left waiting
(item 7), in-process on real SQLite files and the real runner."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.clock import utcnow
from operator_core.db.actions import AttemptResult
from operator_core.db.killfile import PENDING_REASON, KillFile, kill_file_path
from operator_core.errors import DatabaseError, ObserveOnlyError
from operator_core.model.types import ActionStatus, WorkflowStatus
from operator_core.runner import Runner

from tests.support.rows import rows
from tests.support.wait import wait_for

pytestmark = pytest.mark.sqlite_only("the kill file beside the database file (none on PostgreSQL)")

LEFTOVERS_SQL = (
    "SELECT COUNT(*) FROM action_proposals WHERE cancel_requested <> 0 AND (status IN "
    "('proposed', 'validated') OR (status = 'failed' AND next_retry_at IS NOT NULL))"
)


@contextmanager
def write_lock(db: Path) -> Iterator[None]:
    """Another process's write transaction, held for the block."""
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


async def status_of(ex: ActionExecutor, pid: int | None, status: str) -> bool:
    p = await ex.db.get_proposal(pid or 0)
    return p is not None and p.status.value == status


def db_mode(db: Path) -> str:
    return str(rows(db, "SELECT mode FROM safety_state WHERE id = 1")[0][0])


def events(db: Path, kind: str) -> list[dict[str, Any]]:
    return [
        {"actor": r["actor"], **json.loads(r["event_data"])}
        for r in rows(db, "SELECT * FROM action_audit_log WHERE event_type = ?", (kind,))
    ]


async def _executor_locked_out(
    make_executor: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> ActionExecutor:
    monkeypatch.setenv("OPERATOR_BUSY_TIMEOUT", "0.2")
    ex: ActionExecutor = await make_executor()
    return ex


# ---------------------------------------------------------------------- the file itself


def test_the_kill_file_is_private_durable_json_and_keeps_the_first_pull(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    kill = KillFile(db)
    assert kill.path == kill_file_path(db) == tmp_path / "ops.db.kill"
    assert not kill.engaged() and kill.read() is None
    first, created = kill.engage("alice@box", utcnow())
    again, created_again = kill.engage("bob@box", utcnow())
    assert created and not created_again
    assert stat.S_IMODE(os.stat(kill.path).st_mode) == 0o600
    data = json.loads(kill.path.read_text())
    assert data["actor"] == "alice@box" and data["reason"] == "kill switch"
    assert data["pid"] == os.getpid() and data["engaged_at"].endswith("Z")
    assert again == first == kill.read()
    assert [p.name for p in tmp_path.iterdir()] == ["ops.db.kill"]  # no temporary file left
    assert kill.clear() and not kill.engaged() and not kill.clear()


def test_a_garbled_kill_file_still_means_the_switch_is_on(tmp_path: Path) -> None:
    kill = KillFile(tmp_path / "ops.db")
    kill.path.write_text("{not json")
    assert kill.engaged()
    notice = kill.read()
    assert notice is not None and "unknown" in notice.actor


# ---------------------------------------------------------------------- item 3


async def test_the_kill_file_alone_is_observe_for_status_proposals_and_execution(
    executor: ActionExecutor, db_path: Path
) -> None:
    pending = await executor.propose_action("ok", {}, "before the pull")
    KillFile(db_path).engage("oncall@box", utcnow())  # the database has not heard of it
    mode, _, by, reason = await executor.db.get_safety_mode()
    assert (mode, by, reason) == ("observe", "oncall@box", PENDING_REASON)
    with pytest.raises(ObserveOnlyError, match="OBSERVE"):
        await executor.safety.check_can_execute()
    with pytest.raises(ObserveOnlyError, match="oncall@box"):
        await executor.propose_action("ok", {}, "after the pull")
    with pytest.raises(ObserveOnlyError):
        await executor.execute_proposal(pending.id)
    assert db_mode(db_path) == "execute"  # a read or a refusal writes nothing


async def test_a_runners_claim_records_a_kill_switch_the_database_missed(
    executor: ActionExecutor, db_path: Path
) -> None:
    pending = await executor.propose_action("ok", {}, "before the pull")
    KillFile(db_path).engage("oncall@box", utcnow())
    runner = Runner(executor, poll_interval=0.05, runner_id="runner-1")
    stats = await runner.run(until_idle=True)
    assert stats.claimed == 0
    assert db_mode(db_path) == "observe"
    [event] = events(db_path, "kill_switch")
    assert event["actor"] == "oncall@box" and event["recorded_by"] == "runner-1"
    assert event["cancelled_actions"] == [pending.id]
    p = await executor.db.get_proposal(pending.id)
    assert p is not None and p.status == ActionStatus.CANCELLED
    assert await executor.db.list_records(pending.id) == []
    # A second cycle records nothing more.
    await Runner(executor, poll_interval=0.05).run(until_idle=True)
    assert len(events(db_path, "kill_switch")) == 1


async def test_kill_switch_while_another_process_holds_the_write_lock(
    make_executor: Callable[..., Any], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = await _executor_locked_out(make_executor, monkeypatch)
    pending = await ex.propose_action("ok", {}, "queued")
    with write_lock(db_path):
        result = await ex.kill_switch("oncall@box")
        assert not result.recorded and "locked" in (result.database_error or "")
        assert result.kill_file == str(kill_file_path(db_path))
        assert result.engaged_at is not None
        assert (await ex.db.get_safety_mode())[0] == "observe"
        with pytest.raises(DatabaseError, match="locked"):
            await ex.resume("oncall@box")  # fails cleanly, and the switch stays on
        assert kill_file_path(db_path).exists()
    assert db_mode(db_path) == "execute"  # nobody has written yet
    # Resume records the pull first (it revives nothing), then removes the file.
    assert await ex.resume("oncall@box") is True
    assert not kill_file_path(db_path).exists() and db_mode(db_path) == "execute"
    [event] = events(db_path, "kill_switch")
    assert event["cancelled_actions"] == [pending.id]
    assert event["recorded_by"].endswith("(oncall@box)")  # the OS identity, then the label
    p = await ex.db.get_proposal(pending.id)
    assert p is not None and p.status == ActionStatus.CANCELLED
    assert [e["mode"] for e in events(db_path, "safety_mode_changed")] == ["execute"]


async def test_kill_switch_with_the_database_free_records_it_at_once(
    executor: ActionExecutor, db_path: Path
) -> None:
    pending = await executor.propose_action("ok", {}, "queued")
    result = await executor.kill_switch("oncall@box")
    assert result.recorded and result.cancelled_actions == [pending.id]
    assert result.kill_file == str(kill_file_path(db_path))
    [event] = events(db_path, "kill_switch")
    assert "recorded_by" not in event and event["engaged_at"]
    assert await executor.resume("oncall@box") is True
    assert not kill_file_path(db_path).exists()
    assert await executor.resume("oncall@box") is False


async def test_kill_switch_on_an_unreadable_database_still_engages_the_file(
    tmp_path: Path,
) -> None:
    db = tmp_path / "broken.db"
    db.write_bytes(b"not a database at all" * 100)
    ex = ActionExecutor(db, ActionRegistry())
    try:
        with pytest.raises(DatabaseError, match="kill file .* is engaged|engaged through its kill"):
            await ex.kill_switch("oncall@box")
    finally:
        await ex.close()
    assert KillFile(db).engaged()


# ---------------------------------------------------------------------- item 7


async def _claimed(ex: ActionExecutor, action: str = "fail", **params: Any):  # type: ignore[no-untyped-def]
    p = await ex.propose_action(action, params, "r", max_retries=5)
    [claim] = await ex.db.claim_ready("runner-1", 1, 30.0, only_id=p.id)
    return claim


async def test_a_failure_recorded_after_the_kill_switch_lands_cancelled(
    executor: ActionExecutor, db_path: Path
) -> None:
    claim = await _claimed(executor)
    await executor.db.kill_switch("oncall@box")  # the attempt is failing meanwhile
    next_at = await executor.db.record_attempt(
        claim, "runner-1", AttemptResult(False, error="boom", retry_delay_seconds=0.0)
    )
    p = await executor.db.get_proposal(claim.proposal.id)
    assert next_at is None and p is not None
    assert (p.status, p.next_retry_at, p.cancel_reason) == (
        ActionStatus.CANCELLED,
        None,
        "kill switch",
    )
    [event] = [
        e
        for e in await executor.db.list_audit_events(proposal_id=p.id)
        if e.event_type == "cancelled"
    ]
    assert event.event_data["error"] == "boom"
    assert rows(db_path, LEFTOVERS_SQL)[0][0] == 0


async def test_a_timeout_or_a_non_retryable_failure_after_a_cancel_lands_cancelled(
    executor: ActionExecutor,
) -> None:
    for result in ("timeout", "permanent"):
        claim = await _claimed(executor, "slow", seconds=5.0)
        await executor.cancel_proposal(claim.proposal.id, "oncall@box", "wrong host")
        outcome = (
            executor.timed_out(claim)
            if result == "timeout"
            else AttemptResult(False, error="no", retryable=False)
        )
        await executor.db.record_attempt(claim, "runner-1", outcome)
        p = await executor.db.get_proposal(claim.proposal.id)
        assert p is not None and p.status == ActionStatus.CANCELLED, result
        assert p.cancel_reason == "wrong host" and p.next_retry_at is None


async def test_an_attempt_requeued_at_shutdown_after_a_stop_request_lands_cancelled(
    executor: ActionExecutor,
) -> None:
    claim = await _claimed(executor, "slow", seconds=5.0)
    await executor.db.kill_switch("oncall@box")
    await executor.db.requeue_attempt(claim, "runner-1", "runner shutdown")
    p = await executor.db.get_proposal(claim.proposal.id)
    assert p is not None and p.status == ActionStatus.CANCELLED
    [record] = await executor.db.list_records(p.id)
    assert record.completed_at is not None and "interrupted" in (record.error_message or "")


async def test_a_workflow_step_failing_after_its_workflow_was_cancelled_lands_cancelled(
    executor: ActionExecutor,
) -> None:
    wf_id = await executor.propose_workflow(
        "wf", "d", [{"action_name": "fail", "max_retries": 5}, {"action_name": "ok"}]
    )
    [claim] = await executor.db.claim_ready("runner-1", 5, 30.0)
    await executor.cancel_workflow(wf_id, "oncall@box", "not now")
    await executor.db.record_attempt(
        claim, "runner-1", AttemptResult(False, error="boom", retry_delay_seconds=0.0)
    )
    steps = await executor.db.list_workflow_actions(wf_id)
    assert [s.status for s in steps] == [ActionStatus.CANCELLED, ActionStatus.CANCELLED]
    wf = await executor.db.get_workflow(wf_id)
    assert wf is not None and wf.status == WorkflowStatus.CANCELLED


async def test_the_runner_sweeps_actions_an_older_version_left_asked_to_stop(
    executor: ActionExecutor, db_path: Path
) -> None:
    retrying = await executor.propose_action("fail", {}, "r", max_retries=5)
    requeued = await executor.propose_action("ok", {}, "r")
    # What the old code left: a retry scheduled, an attempt requeued, each after a stop
    # request; neither is ever claimed (cancel_requested) nor ended.
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute(
        "UPDATE action_proposals SET status = 'failed', next_retry_at = '2000-01-01T00:00:00"
        ".000000Z', retry_count = 1, cancel_requested = 1, cancel_reason = 'kill switch' "
        "WHERE id = ?",
        (retrying.id,),
    )
    conn.execute(
        "UPDATE action_proposals SET cancel_requested = 1, cancel_reason = 'stop' WHERE id = ?",
        (requeued.id,),
    )
    conn.close()
    assert rows(db_path, LEFTOVERS_SQL)[0][0] == 2
    stats = await Runner(executor, poll_interval=0.05).run(until_idle=True)
    assert stats.claimed == 0
    assert rows(db_path, LEFTOVERS_SQL)[0][0] == 0
    for pid, reason in ((retrying.id, "kill switch"), (requeued.id, "stop")):
        p = await executor.db.get_proposal(pid)
        assert p is not None and (p.status, p.cancel_reason) == (ActionStatus.CANCELLED, reason)
        assert p.next_retry_at is None
        audit = await executor.db.list_audit_events(proposal_id=pid)
        assert audit[-1].event_type == "cancelled"
        assert audit[-1].event_data["while"] == "left waiting"


def test_a_fresh_demo_database_does_not_inherit_an_earlier_demos_kill_switch(
    tmp_path: Path,
) -> None:
    from operator_core.demo import prepare_demo_db

    db = tmp_path / "demo.db"
    db.write_bytes(b"")
    KillFile(db).engage("someone", utcnow())
    prepare_demo_db(db, wipe=True)
    assert not KillFile(db).engaged()


async def test_a_runner_stops_an_attempt_on_the_kill_file_alone_and_catches_up(
    executor: ActionExecutor, db_path: Path
) -> None:
    """No poke and no database change: only the file. The runner's poll of it stops the
    attempt, records it cancelled by the kill switch, and records the kill switch."""
    p = await executor.propose_action("slow", {"seconds": 30.0}, "long job")
    second = ActionExecutor(db_path, executor.registry, approval_mode=False)
    runner = Runner(second, poll_interval=0.1, grace_seconds=0.5, runner_id="runner-1")
    task = asyncio.create_task(runner.run())
    try:
        await wait_for(lambda: status_of(executor, p.id, "executing"), timeout=10)
        KillFile(db_path).engage("oncall@box", utcnow())
        await wait_for(lambda: status_of(executor, p.id, "cancelled"), timeout=10)

        # The catch-up is the runner's next claim, a turn after the stop is recorded.
        async def observe() -> bool:
            return db_mode(db_path) == "observe"

        await wait_for(observe, timeout=10)
    finally:
        runner.request_stop()
        await asyncio.wait_for(task, 10)
        await second.close()
    done = await executor.db.get_proposal(p.id)
    assert done is not None and done.cancel_reason == "kill switch"
    [record] = await executor.db.list_records(p.id)
    assert "cancelled: kill switch" in (record.error_message or "")
    assert db_mode(db_path) == "observe"
    [event] = events(db_path, "kill_switch")
    assert (event["actor"], event["recorded_by"]) == ("oncall@box", "runner-1")
