"""The runner never dies on one action's data (issue 20, item 2): whatever one action's
handling raises (its subject, its result, its record, its next step's delay, a row written
by hand that this version cannot read), that action is failed with the error recorded, its
workflow fails as usual, the other actions are recorded, and the runner goes on."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.limits import MAX_AHEAD_DAYS
from operator_core.actions.retry import RetryConfig
from operator_core.model.types import ActionProposal, ActionStatus
from operator_core.runner import Runner

from tests.support.odd_subject import ODD, OddSubject
from tests.support.rows import rows
from tests.support.wait import running, wait_for


def write(db: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    """What an older version, or a hand with sqlite3, may have left in the database."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


def action(db: Path, pid: int) -> sqlite3.Row:
    return rows(db, "SELECT * FROM action_proposals WHERE id = ?", (pid,))[0]


def records(db: Path, pid: int) -> list[sqlite3.Row]:
    return rows(db, "SELECT * FROM action_records WHERE proposal_id = ? ORDER BY id", (pid,))


def assert_failed_for_good(db: Path, pid: int, *words: str) -> None:
    row = action(db, pid)
    assert (row["status"], row["next_retry_at"]) == ("failed", None), dict(row)
    assert row["finished_at"] is not None and row["claimed_by"] is None
    for word in words:
        assert word in row["last_error"], (word, row["last_error"])
    for record in records(db, pid):
        assert record["completed_at"] is not None and record["success"] == 0


async def test_an_action_whose_handling_raises_fails_alone_and_its_batch_is_recorded(
    make_executor: Callable[..., Any], db_path: Path
) -> None:
    ex: ActionExecutor = await make_executor(subject=OddSubject())
    odd = {name: (await ex.propose_action(name, {}, "odd", max_retries=0)).id for name in ODD}
    fine = [(await ex.propose_action("ok", {}, f"fine {i}")).id for i in range(12)]
    # Everything at once: the odd results are recorded in the same batch as the fine ones.
    await Runner(ex, concurrency=32, poll_interval=0.05).run(until_idle=True)

    for pid in fine:
        assert action(db_path, pid)["status"] == "completed"
    expected = {
        "circular_result": "Circular reference",
        "huge_int_result": "ValueError",
        "tuple_key_result": "TypeError",
        "surrogate_error": "bad \\udcff bytes",  # the subject's message, made storable
        "unprintable_error": "no message for you",
        "system_exit": "SystemExit",
        "keyboard_interrupt": "KeyboardInterrupt",
    }
    for name, pid in odd.items():
        assert_failed_for_good(db_path, pid, expected[name])
        [record] = records(db_path, pid)
        assert expected[name] in record["error_message"]
    ok, _, problem = await ex.db.verify_audit_chain()
    assert ok, problem


async def test_a_retry_wait_out_of_range_is_kept_within_ten_years(
    make_executor: Callable[..., Any], db_path: Path
) -> None:
    """A retry configuration whose backoff is absurd (subjects cannot declare one: see
    test_runbook_limits) waits at most ten years for its retry, instead of stopping the
    runner."""
    absurd = RetryConfig(max_attempts=3, min_wait_seconds=1e300, max_wait_seconds=1e300)
    ex: ActionExecutor = await make_executor(subject=OddSubject(), retry_config=absurd)
    now = ex.db.clock.now()
    stored = await ex.db.create_proposal(
        ActionProposal(
            action_name="fail",
            reason="stored by an older version",
            max_retries=2,
            status=ActionStatus.VALIDATED,
            requires_approval=False,
            validated_at=now,
        )
    )
    await Runner(ex, poll_interval=0.05).run(until_idle=True)
    row = action(db_path, stored.id)
    assert row["status"] == "failed" and row["retry_count"] == 1
    waits = datetime.fromisoformat(row["next_retry_at"]) - now
    assert timedelta(days=MAX_AHEAD_DAYS - 1) < waits <= timedelta(days=MAX_AHEAD_DAYS + 1)


@pytest.mark.sqlite_only("rows only SQLite's loose column types hold (text in a REAL column)")
async def test_rows_this_version_cannot_handle_fail_alone_and_the_runner_goes_on(
    make_executor: Callable[..., Any], db_path: Path
) -> None:
    """Rows written directly with sqlite3 (as an older version or a hand might have): each
    that cannot be read, advanced or retried fails, with why; the rest runs."""
    ex: ActionExecutor = await make_executor(subject=OddSubject())

    async def workflow(steps: int) -> list[int]:
        wf = await ex.propose_workflow("wf", "d", [{"action_name": "ok"}] * steps)
        return [p.id for p in await ex.db.list_workflow_actions(wf)]

    # The case: a delay no datetime can hold (99999999999 days, as the CLI took it).
    huge = await workflow(2)
    write(
        db_path,
        "UPDATE action_proposals SET delay_seconds = ? WHERE id = ?",
        (99999999999 * 86400.0, huge[1]),
    )
    texty = await workflow(3)
    write(db_path, "UPDATE action_proposals SET delay_seconds = 'soon' WHERE id = ?", (texty[1],))
    bad = {}
    for column, value in [
        ("parameters", "{not json"),
        ("scheduled_at", "2000-13-45T00:00:00.000000Z"),  # sorts as due, reads as no date
        ("action_type", "telepathy"),
        ("max_retries", "many"),  # read, but no number to compare a failure with
    ]:
        pid = (await ex.propose_action("fail" if column == "max_retries" else "ok", {}, column)).id
        write(db_path, f"UPDATE action_proposals SET {column} = ? WHERE id = ?", (value, pid))
        bad[column] = pid
    # A retry due at a time that is no time: the claim clears it, and the retry runs.
    retry = (await ex.propose_action("ok", {}, "retry")).id
    write(
        db_path,
        "UPDATE action_proposals SET status = 'failed', "
        "next_retry_at = '1999-99-99T00:00:00.000000Z' WHERE id = ?",
        (retry,),
    )
    # Left executing by a runner long gone: one unreadable, one readable with huge limits.
    lost = [(await ex.propose_action("ok", {}, f"lost {i}")).id for i in range(2)]
    for pid, params, retries in [(lost[0], "[]]", 3), (lost[1], "{}", 2**62)]:
        write(
            db_path,
            "UPDATE action_proposals SET status = 'executing', claimed_by = 'ghost',"
            " lease_expires_at = '2001-01-01T00:00:00.000000Z', parameters = ?, "
            "max_retries = ? WHERE id = ?",
            (params, retries, pid),
        )
    # Waiting for times far away, one of them no time at all (it must not wake the runner
    # into a spin, nor stop it).
    far = [(await ex.propose_action("ok", {}, f"far {i}", schedule_in=60)).id for i in range(2)]
    write(
        db_path,
        "UPDATE action_proposals SET scheduled_at = '9999-12-31T23:59:59.999999Z' WHERE id = ?",
        (far[0],),
    )
    write(
        db_path,
        "UPDATE action_proposals SET scheduled_at = '3000-00-00T00:00:00.000000Z' WHERE id = ?",
        (far[1],),
    )

    async def settled() -> bool:
        done = {"completed", "failed", "cancelled"}
        ends = all(action(db_path, pid)["status"] in done for pid in [*huge, *texty, *bad.values()])
        retried = [action(db_path, pid)["status"] for pid in (retry, lost[1])]
        return (
            ends
            and retried == ["completed", "completed"]
            and action(db_path, lost[0])["status"] == "failed"
        )

    async with running(ex, poll_interval=0.05, lease_seconds=5) as runner:
        await wait_for(settled, timeout=20)
        later = (await ex.propose_action("ok", {}, "proposed after all that")).id
        await wait_for(lambda: _status(db_path, later, "completed"), timeout=10)
        assert not runner.inflight

    # The step that ran is completed; the next, whose delay is no time, failed; so did the
    # workflow (and the step after it was cancelled).
    assert action(db_path, huge[0])["status"] == "completed"
    assert_failed_for_good(db_path, huge[1], "delay", "cannot be turned into a time")
    assert action(db_path, texty[0])["status"] == "completed"
    assert_failed_for_good(db_path, texty[1], "'soon'")
    assert action(db_path, texty[2])["status"] == "cancelled"
    for steps in (huge, texty):
        wf = action(db_path, steps[0])["workflow_id"]
        assert rows(db_path, "SELECT status FROM workflows WHERE id = ?", (wf,))[0][0] == "failed"
    assert_failed_for_good(db_path, bad["parameters"], "cannot read", "JSONDecodeError")
    assert_failed_for_good(db_path, bad["scheduled_at"], "cannot read", "month must be in")
    assert_failed_for_good(db_path, bad["action_type"], "cannot read", "telepathy")
    assert_failed_for_good(db_path, bad["max_retries"], "could not record", "TypeError")
    assert action(db_path, retry)["status"] == "completed"
    assert_failed_for_good(db_path, lost[0], "runner lost, then")
    assert action(db_path, lost[1])["status"] == "completed"  # retried: a limit of 2**62 is kept
    assert [action(db_path, pid)["status"] for pid in far] == ["validated", "validated"]
    for pid in bad.values():  # each unreadable one was claimed once, and its record closed
        assert len(records(db_path, pid)) <= 1
    ok, _, problem = await ex.db.verify_audit_chain()
    assert ok, problem


async def _status(db: Path, pid: int, status: str) -> bool:
    return bool(action(db, pid)["status"] == status)


@pytest.mark.sqlite_only("rows only SQLite's loose column types hold (text in a REAL column)")
@pytest.mark.parametrize("limit", [0, 1])
async def test_the_step_after_a_failed_delay_is_not_run(
    make_executor: Callable[..., Any], db_path: Path, limit: int
) -> None:
    """Failing the step whose delay is out of range leaves nothing of its workflow to run,
    whether or not its runner had room to claim more in the same cycle."""
    ex: ActionExecutor = await make_executor(subject=OddSubject())
    wf = await ex.propose_workflow("wf", "d", [{"action_name": "ok"}] * 3)
    steps = [p.id for p in await ex.db.list_workflow_actions(wf)]
    write(db_path, "UPDATE action_proposals SET delay_seconds = 'inf' WHERE id = ?", (steps[1],))
    write(db_path, "UPDATE action_proposals SET delay_seconds = 1e308 WHERE id = ?", (steps[2],))
    await Runner(ex, concurrency=1 + limit, poll_interval=0.05).run(until_idle=True)
    assert [action(db_path, pid)["status"] for pid in steps] == ["completed", "failed", "cancelled"]
    assert [len(records(db_path, pid)) for pid in steps] == [1, 0, 0]


async def test_an_outcome_that_cannot_be_recorded_inline_fails_its_action(
    make_executor: Callable[..., Any], db_path: Path
) -> None:
    """The same outside the runner's batches: ``execute_proposal`` records the failure
    instead of raising and leaving the action executing."""
    ex: ActionExecutor = await make_executor(subject=OddSubject())
    p = await ex.propose_action("circular_result", {}, "odd")
    await ex.execute_proposal(p.id)
    assert_failed_for_good(db_path, p.id, "Circular reference")
