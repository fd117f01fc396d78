"""Every lifecycle path through the executor and a real runner on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.retry import RetryConfig
from operator_core.errors import (
    ActionNotFoundError,
    ApprovalError,
    InvalidTransitionError,
    ObserveOnlyError,
    UnknownActionError,
    ValidationError,
)
from operator_core.identity import current_identity
from operator_core.model.types import ActionStatus, WorkflowStatus

from tests.support.wait import running, status_of, wait_for


async def _events(ex: ActionExecutor, pid: int) -> list[str]:
    return [e.event_type for e in await ex.db.list_audit_events(proposal_id=pid, limit=500)]


async def test_propose_validates_and_audits(executor: ActionExecutor) -> None:
    p = await executor.propose_action("ok", {"seconds": "0.5"}, "because", proposed_by="bot")
    assert p.status == ActionStatus.VALIDATED and p.validated_at is not None
    assert p.parameters == {"seconds": 0.5}  # typed by the registry
    assert p.requires_approval is False
    events = await executor.db.list_audit_events(proposal_id=p.id)
    assert [e.event_type for e in events] == ["proposed"]
    assert events[0].actor == f"{current_identity().text} (bot)"  # who, and the label
    assert events[0].event_data["validated"] is True
    assert events[0].event_data["parameters"] == {"seconds": 0.5}


@pytest.mark.parametrize(
    ("action", "params", "error", "match"),
    [
        ("nope", {}, UnknownActionError, "unknown action 'nope'"),
        ("flaky", {}, ValidationError, "missing required parameter 'times'"),
        ("flaky", {"times": "x"}, ValidationError, "'times' must be an integer"),
        ("ok", {"bogus": 1}, ValidationError, "unknown parameter 'bogus'"),
    ],
)
async def test_bad_proposals_are_refused_and_store_nothing(
    executor: ActionExecutor, action: str, params: dict, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        await executor.propose_action(action, params, "r")
    assert await executor.db.list_proposals() == []
    assert [e.event_type for e in await executor.db.list_audit_events()] == ["policy_seeded"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reason": 5}, "needs a reason"),
        ({"reason": "  "}, "needs a reason"),
        ({"proposed_by": None}, "proposed_by must be a string"),
        ({"action_type": "telepathy"}, "unknown action type"),
        ({"ticket_id": "1"}, "ticket id is a whole number"),
        ({"max_retries": 2.5}, "max_retries must be a whole number"),
        ({"max_retries": True}, "max_retries must be a whole number"),
        ({"scheduled_at": "tomorrow"}, "schedule time must be a datetime"),
        ({"schedule_in": "5"}, "schedule delay must be a number of seconds"),
        ({"expires_in": float("nan")}, "expiry delay must be a number of seconds"),
    ],
)
async def test_bad_arguments_are_refused_by_name_and_store_nothing(
    executor: ActionExecutor, kwargs: dict, match: str
) -> None:
    args = {"reason": "r", **kwargs}
    with pytest.raises(ValidationError, match=match):
        await executor.propose_action("ok", {}, **args)
    with pytest.raises(ValidationError, match="an action name is a string"):
        await executor.propose_action(["ok"], {}, "r")  # type: ignore[arg-type]
    assert await executor.db.list_proposals() == []
    assert [e.event_type for e in await executor.db.list_audit_events()] == ["policy_seeded"]


async def test_a_proposal_is_what_validating_its_own_fields_gives(
    executor: ActionExecutor,
) -> None:
    """What propose_action returns is the model its fields validate to (typed, times in UTC),
    and reads back the same once stored."""
    from datetime import datetime, timezone

    from operator_core.model.types import ActionProposal, ActionType

    ticket = await executor.open_ticket("disk full")
    local = datetime(2031, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    made = [
        await executor.propose_action("ok", {"seconds": 1}, "plain"),
        await executor.propose_action(
            "ok",
            {},
            "everything",
            ticket_id=ticket.id,
            proposed_by="bot",
            scheduled_at=local,
            max_retries=0,
            expires_in=60,
            action_type="subject",
        ),
    ]
    for p in made:
        assert p == ActionProposal.model_validate(p.model_dump())
        assert p == await executor.db.get_proposal(p.id)
    assert made[1].scheduled_at == local and made[1].scheduled_at.tzinfo is not None
    assert made[1].action_type is ActionType.SUBJECT and made[1].max_retries == 0


async def test_approve_then_execute_completes_with_record(make_executor) -> None:
    ex = await make_executor(approval_mode=True)
    p = await ex.propose_action("ok", {}, "r", proposed_by="bot")
    assert p.awaiting_approval
    with pytest.raises(InvalidTransitionError, match="awaiting approval"):
        await ex.execute_proposal(p.id)
    approved = await ex.approve_proposal(p.id, "alice@ops")
    assert approved.approved_by == "alice@ops" and approved.approved_at is not None
    outcome = await ex.execute_proposal(p.id)
    assert outcome.success
    done = await ex.db.get_proposal(p.id)
    assert done.status == ActionStatus.COMPLETED
    records = await ex.db.list_records(p.id)
    assert len(records) == 1 and records[0].success is True and records[0].attempt == 1
    assert records[0].result_data == {"ok": True, "attempt": 1}
    assert await _events(ex, p.id) == ["proposed", "approved", "execution_started", "completed"]


async def test_reject_cancels_and_keeps_the_reason(make_executor) -> None:
    ex = await make_executor(approval_mode=True)
    p = await ex.propose_action("ok", {}, "r")
    with pytest.raises(ValidationError, match="needs a reason"):
        await ex.reject_proposal(p.id, "bob@ops", " ")
    rejected = await ex.reject_proposal(p.id, "bob@ops", "wrong store")
    assert rejected.status == ActionStatus.CANCELLED
    assert rejected.rejected_by == "bob@ops" and rejected.rejection_reason == "wrong store"
    with pytest.raises(InvalidTransitionError, match="already rejected"):
        await ex.approve_proposal(p.id, "alice@ops")
    assert await ex.db.list_records(p.id) == []


async def test_approving_unknown_or_cancelled_action_is_refused(executor: ActionExecutor) -> None:
    with pytest.raises(ActionNotFoundError):
        await executor.approve_proposal(12345, "a@b")
    p = await executor.propose_action("guarded", {}, "r")
    await executor.cancel_proposal(p.id, "a@b")
    with pytest.raises(InvalidTransitionError, match="cancelled"):
        await executor.approve_proposal(p.id, "a@b")


async def test_requires_approval_holds_even_with_approval_mode_off(executor) -> None:
    p = await executor.propose_action("guarded", {}, "r")
    assert p.requires_approval and executor.approval_mode is False
    async with running(executor):
        await _settle()
        assert await status_of(executor, p.id) == "validated"
        assert await executor.db.list_records(p.id) == []
        await executor.approve_proposal(p.id, "alice@ops")
        await wait_for(lambda: _is(executor, p.id, "completed"))


async def _settle() -> None:
    import asyncio

    await asyncio.sleep(0.3)


async def _is(ex: ActionExecutor, pid: int, status: str) -> bool:
    return await status_of(ex, pid) == status


async def test_approving_what_needs_no_approval_is_refused(executor: ActionExecutor) -> None:
    p = await executor.propose_action("ok", {}, "r")
    with pytest.raises(ApprovalError, match="needs no approval"):
        await executor.approve_proposal(p.id, "a@b")


async def test_four_eyes_rule(make_executor) -> None:
    ex = await make_executor(approval_mode=True, four_eyes=True)
    p = await ex.propose_action("ok", {}, "r", proposed_by="alice@ops")
    # The approver's name is a label: this process's OS account proposed it.
    with pytest.raises(ApprovalError, match="four-eyes"):
        await ex.approve_proposal(p.id, "bob@ops")
    approved = await ex.db.approve_proposal(p.id, "bob@ops", identity="bob@ops")
    assert approved.approved_by == "bob@ops"


async def test_approval_mode_comes_from_environment(make_executor, monkeypatch) -> None:
    monkeypatch.setenv("OPERATOR_APPROVAL_MODE", "true")  # seeds the new database's policy
    ex = await make_executor(approval_mode=None)
    assert ex.approval_mode is True
    assert (await ex.propose_action("ok", {}, "r")).requires_approval


async def test_unapproved_proposal_expires(make_executor) -> None:
    ex = await make_executor(approval_mode=True)
    p = await ex.propose_action("ok", {}, "r", expires_in=0.05)
    keep = await ex.propose_action("ok", {}, "r", expires_in=60)
    await _settle()
    assert await ex.expire_due() == [p.id]
    expired = await ex.db.get_proposal(p.id)
    assert expired.status == ActionStatus.CANCELLED and expired.cancel_reason == "expired"
    assert "expired" in await _events(ex, p.id)
    assert await status_of(ex, keep.id) == "validated"


async def test_runner_expires_proposals_on_time(make_executor) -> None:
    ex = await make_executor(approval_mode=True)
    p = await ex.propose_action("ok", {}, "r", expires_in=0.3)
    async with running(ex):
        await wait_for(lambda: _is(ex, p.id, "cancelled"), timeout=3)


async def test_failure_retries_with_backoff_then_exhausts(executor: ActionExecutor) -> None:
    p = await executor.propose_action("fail", {}, "r", max_retries=2)
    async with running(executor):
        await wait_for(lambda: _is(executor, p.id, "failed"))
        first = await executor.db.get_proposal(p.id)
        assert first.next_retry_at is not None  # waiting for a retry, persisted
        assert first.retry_count == 1 and first.last_error == "boom on attempt 1"
        await wait_for(lambda: _failed_for_good(executor, p.id), timeout=10)
    final = await executor.db.get_proposal(p.id)
    assert final.retry_count == 2 and final.next_retry_at is None
    assert final.last_error == "boom on attempt 3"
    records = await executor.db.list_records(p.id)
    assert [r.attempt for r in records] == [1, 2, 3]
    assert all(r.success is False for r in records)
    # Each retry started no earlier than its backoff allowed.
    for before, after in zip(records, records[1:], strict=False):
        gap = (after.started_at - before.completed_at).total_seconds()
        assert gap >= 0.05 - 0.01
    events = await _events(executor, p.id)
    assert events.count("retry_scheduled") == 2 and events[-1] == "retry_exhausted"


async def _failed_for_good(ex: ActionExecutor, pid: int) -> bool:
    p = await ex.db.get_proposal(pid)
    return p.status == ActionStatus.FAILED and p.next_retry_at is None


async def test_flaky_action_succeeds_on_retry(executor: ActionExecutor) -> None:
    p = await executor.propose_action("flaky", {"times": 2}, "r")
    async with running(executor):
        await wait_for(lambda: _is(executor, p.id, "completed"), timeout=10)
    records = await executor.db.list_records(p.id)
    assert [r.success for r in records] == [False, False, True]


async def test_non_retryable_failure_fails_at_once(executor: ActionExecutor) -> None:
    p = await executor.propose_action("fail_hard", {}, "r")
    outcome = await executor.execute_proposal(p.id)
    assert not outcome.success and outcome.next_retry_at is None
    final = await executor.db.get_proposal(p.id)
    assert final.status == ActionStatus.FAILED and final.next_retry_at is None
    assert final.retry_count == 0


async def test_schedule_next_retry_seed_api(executor: ActionExecutor) -> None:
    p = await executor.propose_action("fail_hard", {}, "r", max_retries=1)
    await executor.execute_proposal(p.id)
    when = await executor.schedule_next_retry(p.id, "try again")
    assert when is not None
    again = await executor.db.get_proposal(p.id)
    assert again.retry_count == 1 and again.next_retry_at is not None
    assert await executor.schedule_next_retry(p.id, "and again") is None  # limit is 1


async def test_per_action_timeout_fails_the_attempt(make_executor, monkeypatch) -> None:
    monkeypatch.setenv("TEST_SLOW_TIMEOUT", "0.2")
    ex = await make_executor()
    p = await ex.propose_action("slow", {"seconds": 5}, "r", max_retries=0)
    outcome = await ex.execute_proposal(p.id)
    assert not outcome.success and outcome.error == "timed out after 0.2s"


async def test_the_runner_stops_each_attempt_at_its_own_time_limit(
    make_executor, monkeypatch
) -> None:
    monkeypatch.setenv("TEST_SLOW_TIMEOUT", "0.3")
    ex = await make_executor()
    long_ok = await ex.propose_action("ok", {"seconds": 0.8}, "r")  # its limit is 30 s
    async with running(ex):
        await wait_for(lambda: _is(ex, long_ok.id, "executing"))
        # A shorter limit than the one the runner's timer waits for, then a later one.
        first = await ex.propose_action("slow", {"seconds": 5}, "r", max_retries=0)
        await asyncio.sleep(0.15)
        second = await ex.propose_action("slow", {"seconds": 5}, "r", max_retries=1)
        for p in (first, second):
            await wait_for(lambda p=p: _failed_for_good(ex, p.id), timeout=5)
        await wait_for(lambda: _is(ex, long_ok.id, "completed"), timeout=5)
    records = [*await ex.db.list_records(first.id), *await ex.db.list_records(second.id)]
    assert len(records) == 3  # the second was retried once, and timed out again
    for record in records:
        assert record.success is False and record.error_message == "timed out after 0.3s"
        took = (record.completed_at - record.started_at).total_seconds()
        assert 0.29 <= took < 3.0
    [ok_record] = await ex.db.list_records(long_ok.id)
    assert ok_record.success is True


async def test_scheduled_action_fires_at_its_time_not_before(executor: ActionExecutor) -> None:
    p = await executor.propose_action("ok", {}, "r", schedule_in=0.6)
    async with running(executor):
        await _settle()
        assert await executor.db.list_records(p.id) == []
        await wait_for(lambda: _is(executor, p.id, "completed"), timeout=5)
    record = (await executor.db.list_records(p.id))[0]
    assert record.started_at >= p.scheduled_at
    assert (record.started_at - p.scheduled_at) < timedelta(seconds=0.5)


async def test_cancel_pending_and_running(executor: ActionExecutor) -> None:
    pending = await executor.propose_action("ok", {}, "r", schedule_in=60)
    cancelled = await executor.cancel_proposal(pending.id, "a@b")
    assert cancelled.status == ActionStatus.CANCELLED
    with pytest.raises(InvalidTransitionError):
        await executor.cancel_proposal(pending.id, "a@b")
    slow = await executor.propose_action("slow", {"seconds": 30}, "r")
    async with running(executor):
        await wait_for(lambda: _is(executor, slow.id, "executing"))
        await executor.cancel_proposal(slow.id, "a@b", "operator said stop")
        await wait_for(lambda: _is(executor, slow.id, "cancelled"), timeout=2)
    record = (await executor.db.list_records(slow.id))[0]
    assert record.success is False and "operator said stop" in record.error_message


async def test_workflow_runs_in_order_with_delay(executor: ActionExecutor) -> None:
    wf = await executor.propose_workflow(
        "chain",
        "three steps",
        [{"action_name": "ok"}, {"action_name": "ok", "delay_seconds": 0.4}, {"action_name": "ok"}],
    )
    async with running(executor):
        await wait_for(lambda: _wf_is(executor, wf, "completed"), timeout=10)
    steps = await executor.db.list_workflow_actions(wf)
    records = [(await executor.db.list_records(s.id))[0] for s in steps]
    assert all(r.success for r in records)
    assert records[0].completed_at <= records[1].started_at <= records[2].started_at
    assert (records[1].started_at - records[0].completed_at).total_seconds() >= 0.4
    events = [e.event_type for e in await executor.db.list_audit_events(workflow_id=wf)]
    assert events[0] == "workflow_created" and events[-1] == "workflow_completed"


async def _wf_is(ex: ActionExecutor, wf: int, status: str) -> bool:
    return (await ex.db.get_workflow(wf)).status.value == status


async def test_workflow_needs_one_approval_for_all_steps(make_executor) -> None:
    ex = await make_executor(approval_mode=True)
    wf = await ex.propose_workflow("chain", "d", [{"action_name": "ok"}, {"action_name": "ok"}])
    steps = await ex.db.list_workflow_actions(wf)
    with pytest.raises(ApprovalError, match="approve the workflow"):
        await ex.approve_proposal(steps[0].id, "a@b")
    async with running(ex):
        await _settle()
        assert await _wf_is(ex, wf, "pending")
        await ex.approve_workflow(wf, "alice@ops")
        await wait_for(lambda: _wf_is(ex, wf, "completed"), timeout=10)


async def test_workflow_step_failing_for_good_fails_workflow_and_cancels_the_rest(
    executor: ActionExecutor,
) -> None:
    wf = await executor.propose_workflow(
        "chain",
        "d",
        [
            {"action_name": "ok"},
            {"action_name": "fail", "max_retries": 1},
            {"action_name": "ok"},
            {"action_name": "ok"},
        ],
    )
    async with running(executor):
        await wait_for(lambda: _wf_is(executor, wf, "failed"), timeout=10)
    steps = await executor.db.list_workflow_actions(wf)
    assert [s.status.value for s in steps] == ["completed", "failed", "cancelled", "cancelled"]
    assert steps[2].cancel_reason == "step 2 failed"
    assert len(await executor.db.list_records(steps[1].id)) == 2
    assert await executor.db.list_records(steps[2].id) == []


async def test_propose_workflow_validates_every_step_before_storing(executor) -> None:
    with pytest.raises(ValidationError, match="step 2"):
        await executor.propose_workflow(
            "chain", "d", [{"action_name": "ok"}, {"action_name": "flaky"}]
        )
    assert await executor.db.list_workflows() == []
    assert await executor.db.list_proposals() == []


async def test_reject_and_cancel_workflow(make_executor) -> None:
    ex = await make_executor(approval_mode=True)
    wf = await ex.propose_workflow("a", "d", [{"action_name": "ok"}, {"action_name": "ok"}])
    rejected = await ex.reject_workflow(wf, "bob@ops", "not now")
    assert rejected.status == WorkflowStatus.CANCELLED and rejected.rejection_reason == "not now"
    assert {s.status for s in await ex.db.list_workflow_actions(wf)} == {ActionStatus.CANCELLED}
    wf2 = await ex.propose_workflow("b", "d", [{"action_name": "ok"}])
    await ex.cancel_workflow(wf2, "bob@ops")
    with pytest.raises(InvalidTransitionError):
        await ex.approve_workflow(wf2, "alice@ops")


async def test_kill_switch_cancels_everything_and_blocks_new_work(make_executor) -> None:
    # A retry wait far longer than the test: the failed action must still be waiting when
    # the switch is pulled (with the fast retries it was due again, and claimed, first).
    slow_retry = RetryConfig(max_attempts=3, min_wait_seconds=60, max_wait_seconds=120)
    executor = await make_executor(retry_config=slow_retry)
    pending = await executor.propose_action("guarded", {}, "r")
    scheduled = await executor.propose_action("ok", {}, "r", schedule_in=300)
    retrying = await executor.propose_action("fail", {}, "r", max_retries=5)
    await executor.execute_proposal(retrying.id)
    assert (await executor.db.get_proposal(retrying.id)).is_retry_waiting
    wf = await executor.propose_workflow("w", "d", [{"action_name": "guarded"}])
    slow = await executor.propose_action("slow", {"seconds": 30}, "r")
    async with running(executor):
        await wait_for(lambda: _is(executor, slow.id, "executing"))
        result = await executor.kill_switch("alice@ops")
        assert set(result.cancelled_actions) >= {pending.id, scheduled.id, retrying.id}
        assert result.cancelled_workflows == [wf]
        assert result.executing_signalled == [slow.id]
        await wait_for(lambda: _is(executor, slow.id, "cancelled"), timeout=1.5)
    for pid in (pending.id, scheduled.id, retrying.id, slow.id):
        p = await executor.db.get_proposal(pid)
        assert p.status == ActionStatus.CANCELLED and p.cancel_reason == "kill switch"
    assert (await executor.db.get_proposal(retrying.id)).next_retry_at is None
    slow_records = await executor.db.list_records(slow.id)
    assert slow_records[-1].error_message == "cancelled: kill switch"
    with pytest.raises(ObserveOnlyError, match="OBSERVE"):
        await executor.propose_action("ok", {}, "r")
    # Resume is explicit and revives nothing.
    assert await executor.resume("alice@ops") is True
    assert (await executor.db.get_proposal(pending.id)).status == ActionStatus.CANCELLED
    assert (await executor.propose_action("ok", {}, "r")).status == ActionStatus.VALIDATED


async def test_concurrency_limit_is_respected(executor: ActionExecutor) -> None:
    ids = [(await executor.propose_action("ok", {"seconds": 0.2}, "r")).id for _ in range(6)]
    async with running(executor, concurrency=2):
        for pid in ids:
            await wait_for(lambda pid=pid: _is(executor, pid, "completed"), timeout=10)
    spans = [(await executor.db.list_records(pid))[0] for pid in ids]
    events = sorted([(r.started_at, 1) for r in spans] + [(r.completed_at, -1) for r in spans])
    running_now = peak = 0
    for _, delta in events:
        running_now += delta
        peak = max(peak, running_now)
    assert peak <= 2


@pytest.mark.sqlite_only("edits the file with sqlite3; PostgreSQL's: tests/core/test_pg_audit.py")
async def test_audit_chain_verifies_and_detects_raw_edits(executor, db_path: Path) -> None:
    p = await executor.propose_action("ok", {}, "r")
    await executor.execute_proposal(p.id)
    ok, count, _ = await executor.auditor.verify()
    assert ok and count == 4  # the policy's seeding, proposed, started, completed
    conn = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE action_audit_log SET actor = 'mallory' WHERE id = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM action_audit_log WHERE id = 1")
    conn.execute("DROP TRIGGER action_audit_log_no_update")
    conn.execute("UPDATE action_audit_log SET actor = 'mallory' WHERE id = 2")
    conn.commit()
    conn.close()
    ok, _, message = await executor.auditor.verify()
    assert not ok and "event 2" in message


@pytest.mark.sqlite_only("edits the file with sqlite3; PostgreSQL's: tests/core/test_pg_audit.py")
async def test_audit_detects_deleted_tail(executor, db_path: Path) -> None:
    p = await executor.propose_action("ok", {}, "r")
    await executor.execute_proposal(p.id)
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TRIGGER action_audit_log_no_delete")
    conn.execute("DELETE FROM action_audit_log WHERE id = (SELECT MAX(id) FROM action_audit_log)")
    conn.commit()
    conn.close()
    ok, _, message = await executor.auditor.verify()
    assert not ok and "deleted" in message


async def test_cancel_on_the_runners_own_connection_stops_it_after_a_poke(
    executor: ActionExecutor,
) -> None:
    """A writer sharing the runner's connection gets no socket poke; Runner.poke() is how it
    tells the runner to look again."""
    import asyncio

    from operator_core.runner import Runner

    slow = await executor.propose_action("slow", {"seconds": 30}, "r")
    runner = Runner(executor, grace_seconds=0.5, poll_interval=5.0)
    task = asyncio.create_task(runner.run())
    try:
        await wait_for(lambda: _is(executor, slow.id, "executing"))
        await executor.cancel_proposal(slow.id, "a@b")
        runner.poke()
        await wait_for(lambda: _is(executor, slow.id, "cancelled"), timeout=1.0)
    finally:
        runner.request_stop()
        await asyncio.wait_for(task, 10)


def test_zero_backoff_override_is_respected(executor: ActionExecutor) -> None:
    from operator_core.actions.registry import ActionDefinition

    definition = ActionDefinition(name="x", retry_min_wait_seconds=0.0, retry_max_wait_seconds=0.0)
    assert executor.retry_delay(definition, 3) == 0.0


async def test_graceful_shutdown_requeues_without_spending_a_retry(executor) -> None:
    slow = await executor.propose_action("slow", {"seconds": 30}, "r", max_retries=0)
    async with running(executor, grace_seconds=0.1):
        await wait_for(lambda: _is(executor, slow.id, "executing"))
    p = await executor.db.get_proposal(slow.id)
    assert p.status == ActionStatus.VALIDATED and p.retry_count == 0
    (record,) = await executor.db.list_records(slow.id)
    assert record.success is False and record.error_message == "interrupted: runner shutdown"
    assert "interrupted" in await _events(executor, slow.id)
    claims = await executor.db.claim_ready("next-runner", 1, 30)
    assert [c.record.attempt for c in claims] == [2]  # numbered after the interrupted one


def test_cli_refuses_a_missing_database_for_commands_that_need_one(tmp_path: Path) -> None:
    from operator_core.cli import main

    missing = tmp_path / "typo.db"
    for argv in (["approve", "1"], ["status"], ["actions", "list"], ["kill-switch", "--yes"]):
        assert main(["--db", str(missing), *argv]) == 1
    assert not missing.exists()


async def test_past_due_action_awaiting_approval_does_not_wake_the_runner(make_executor) -> None:
    """next_wakeup() looks only at future times; an overdue action that still awaits approval
    must not make the runner spin."""
    ex = await make_executor(approval_mode=True)
    p = await ex.propose_action("ok", {}, "r", schedule_in=0.05)
    await _settle()
    assert await ex.db.next_wakeup() is None
    assert await ex.db.claim_ready("r1", 4, 30) == []
    later = await ex.propose_action("ok", {}, "r", schedule_in=60)
    assert await ex.db.next_wakeup() == later.scheduled_at
    await ex.approve_proposal(p.id, "alice@ops")
    assert [c.proposal.id for c in await ex.db.claim_ready("r1", 4, 30)] == [p.id]


async def test_claims_take_due_work_in_time_order(executor: ActionExecutor) -> None:
    first = await executor.propose_action("fail", {}, "r")
    await executor.execute_proposal(first.id)  # now waiting for a retry
    retry_at = (await executor.db.get_proposal(first.id)).next_retry_at
    fresh = [await executor.propose_action("ok", {}, "r") for _ in range(3)]
    await _settle()  # the retry (due within 0.3 s) and the three are all due
    keys = {first.id: retry_at, **{p.id: p.proposed_at for p in fresh}}
    expected = sorted(keys, key=lambda pid: (keys[pid], pid))
    claimed = []
    for _ in expected:  # one at a time: each claim takes the earliest due
        (claim,) = await executor.db.claim_ready("r1", 1, 30)
        claimed.append(claim.proposal.id)
    assert claimed == expected
    assert await executor.db.claim_ready("r1", 1, 30) == []


async def test_propose_actions_stores_all_or_nothing(executor: ActionExecutor) -> None:
    with pytest.raises(ValidationError, match="proposal 2: missing required parameter"):
        await executor.propose_actions(
            [{"action_name": "ok", "reason": "a"}, {"action_name": "flaky", "reason": "b"}]
        )
    assert await executor.db.list_proposals() == []
    stored = await executor.propose_actions(
        [
            {"action_name": "ok", "reason": "a"},
            {"action_name": "guarded", "reason": "b", "schedule_in": 60},
        ],
        proposed_by="bot",
    )
    assert [p.action_name for p in stored] == ["ok", "guarded"]
    assert stored[1].requires_approval and stored[1].scheduled_at is not None
    for p in stored:
        events = await executor.db.list_audit_events(proposal_id=p.id)
        assert [(e.event_type, e.actor) for e in events] == [
            ("proposed", f"{current_identity().text} (bot)")
        ]
    await executor.kill_switch("a@b")
    with pytest.raises(ObserveOnlyError):
        await executor.propose_actions([{"action_name": "ok", "reason": "a"}])
