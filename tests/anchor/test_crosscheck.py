"""The proposals table against the audit events: a database the engine wrote agrees with
itself; each row changed behind the writer's back is reported."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from operator_core.anchor.crosscheck import (
    PROPOSAL_EVENTS_SQL,
    PROPOSALS_SQL,
    WORKFLOW_DECISIONS_SQL,
    cross_check,
    params_sha256,
)
from operator_core.anchor.findings import Findings

from tests.anchor.chain import unlock
from tests.support.rows import rows


def check(path: Path) -> Findings:
    conn = sqlite3.connect(path)
    try:
        return cross_check(
            conn.execute(PROPOSALS_SQL),
            conn.execute(PROPOSAL_EVENTS_SQL),
            conn.execute(WORKFLOW_DECISIONS_SQL),
        )
    finally:
        conn.close()


def tamper(path: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    unlock(conn)
    conn.execute(sql, params)
    conn.close()


@pytest.fixture
async def engine_db(make_executor: Any, db_path: Path) -> dict[str, int]:
    """Actions in every end state, written by the real engine."""
    ex = await make_executor(approval_mode=True)
    done = await ex.propose_action("ok", {"seconds": 0}, "r", proposed_by="bot")
    await ex.approve_proposal(done.id, "alice@ops")
    await ex.execute_proposal(done.id)
    rejected = await ex.propose_action("ok", {"seconds": 0}, "r")
    await ex.reject_proposal(rejected.id, "bob@ops", "wrong store")
    cancelled = await ex.propose_action("ok", {"seconds": 0}, "r")
    await ex.cancel_proposal(cancelled.id, "carol@ops", "not needed")
    failed = await ex.propose_action("fail_hard", {}, "r")
    await ex.approve_proposal(failed.id, "alice@ops")
    await ex.execute_proposal(failed.id)
    waiting = await ex.propose_action("ok", {"seconds": 0}, "r")
    retrying = await ex.propose_action("fail", {}, "r")
    await ex.approve_proposal(retrying.id, "alice@ops")
    await ex.execute_proposal(retrying.id)
    await ex.close()
    return {
        "completed": done.id,
        "rejected": rejected.id,
        "cancelled": cancelled.id,
        "failed": failed.id,
        "waiting": waiting.id,
        "retrying": retrying.id,
    }


def messages(found: Findings) -> list[str]:
    return [f.message for f in found.items]


async def test_the_engines_database_agrees_with_its_events(
    engine_db: dict[str, int], db_path: Path
) -> None:
    ((status, next_retry),) = rows(
        db_path,
        "SELECT status, next_retry_at FROM action_proposals WHERE id = ?",
        (engine_db["retrying"],),
    )
    assert status == "failed" and next_retry is not None  # a retry waits
    assert messages(check(db_path)) == []


async def test_retry_waiting_action_marked_running(
    engine_db: dict[str, int], db_path: Path
) -> None:
    pid = engine_db["retrying"]
    tamper(db_path, "UPDATE action_proposals SET status = 'completed' WHERE id = ?", (pid,))
    (finding,) = check(db_path).items
    assert finding.message.endswith("(retry_scheduled) left it failed")


async def test_rejected_action_marked_approved(engine_db: dict[str, int], db_path: Path) -> None:
    pid = engine_db["rejected"]
    tamper(
        db_path,
        "UPDATE action_proposals SET status = 'validated', rejected_at = NULL, "
        "approved_at = rejected_at, approved_by = 'alice@ops', approved_identity = NULL "
        "WHERE id = ?",
        (pid,),
    )
    found = messages(check(db_path))
    assert any(
        m.startswith(f"action {pid} is validated in the table, but event ")
        and m.endswith("(rejected) left it cancelled")
        for m in found
    ), found
    assert f"action {pid} is marked approved by 'alice@ops', but no event approved it" in found


async def test_parameters_changed_after_execution(engine_db: dict[str, int], db_path: Path) -> None:
    pid = engine_db["completed"]
    tamper(
        db_path, "UPDATE action_proposals SET parameters = '{\"seconds\":99}' WHERE id = ?", (pid,)
    )
    (finding,) = check(db_path).items
    assert finding.kind == "parameters_changed"
    assert finding.message.startswith(
        f"action {pid}: its parameters (sha256 {params_sha256({'seconds': 99})[:12]}) differ from "
        "those in event "
    )


async def test_approver_changed_in_the_table(engine_db: dict[str, int], db_path: Path) -> None:
    pid = engine_db["completed"]
    tamper(db_path, "UPDATE action_proposals SET approved_by = 'mallory' WHERE id = ?", (pid,))
    (finding,) = check(db_path).items
    assert finding.kind == "actor_mismatch" and f"action {pid} was approved by " in finding.message


async def test_failed_action_marked_completed(engine_db: dict[str, int], db_path: Path) -> None:
    pid = engine_db["failed"]
    tamper(db_path, "UPDATE action_proposals SET status = 'completed' WHERE id = ?", (pid,))
    assert [f.kind for f in check(db_path).items] == ["status_mismatch"]


async def test_waiting_action_marked_completed_without_events(
    engine_db: dict[str, int], db_path: Path
) -> None:
    pid = engine_db["waiting"]
    tamper(db_path, "UPDATE action_proposals SET status = 'completed' WHERE id = ?", (pid,))
    assert messages(check(db_path)) == [
        f"action {pid} is completed in the table, but no event made it so"
    ]


async def test_deleted_and_inserted_rows(engine_db: dict[str, int], db_path: Path) -> None:
    tamper(db_path, "DELETE FROM action_proposals WHERE id = ?", (engine_db["cancelled"],))
    tamper(
        db_path,
        "INSERT INTO action_proposals (action_name, parameters, reason, status, proposed_at) "
        "VALUES ('ok', '{}', 'r', 'completed', '2026-01-01T00:00:00.000000Z')",
    )
    found = check(db_path)
    assert [f.kind for f in found.items] == ["action_missing", "unrecorded"]
    assert messages(found)[0].startswith(f"action {engine_db['cancelled']} has ")
    assert messages(found)[1].endswith("(completed) has no audit events at all")


async def test_execution_without_the_approval_it_needed(
    engine_db: dict[str, int], db_path: Path
) -> None:
    pid = engine_db["completed"]
    # Remove the approval event and rechain: the row's approval has nothing behind it.
    tamper(
        db_path,
        "DELETE FROM action_audit_log WHERE proposal_id = ? AND event_type = 'approved'",
        (pid,),
    )
    tamper(db_path, "UPDATE action_proposals SET approved_at = NULL WHERE id = ?", (pid,))
    assert [f.kind for f in check(db_path).items] == ["unapproved_execution"]


async def test_workflows_kill_switch_and_resume_agree_with_their_events(
    make_executor: Any, db_path: Path
) -> None:
    ex = await make_executor(approval_mode=True)
    approved = await ex.propose_workflow("a", "d", [{"action_name": "ok"}, {"action_name": "ok"}])
    await ex.approve_workflow(approved, "alice@ops")
    first = (await ex.db.list_workflow_actions(approved))[0]
    await ex.execute_proposal(first.id)
    rejected = await ex.propose_workflow("b", "d", [{"action_name": "ok"}])
    await ex.reject_workflow(rejected, "bob@ops", "no")
    await ex.propose_workflow("c", "d", [{"action_name": "ok"}])
    retrying = await ex.propose_action("fail", {}, "r")
    await ex.approve_proposal(retrying.id, "alice@ops")
    await ex.execute_proposal(retrying.id)
    await ex.kill_switch("carol@ops")
    await ex.resume("carol@ops")
    await ex.close()
    assert messages(check(db_path)) == []
    # A step of the rejected workflow marked approved.
    step = rows(db_path, "SELECT id FROM action_proposals WHERE workflow_id = ?", (rejected,))
    tamper(
        db_path,
        "UPDATE action_proposals SET status = 'validated', approved_at = proposed_at, "
        "approved_by = 'alice@ops', rejected_at = NULL WHERE id = ?",
        (step[0][0],),
    )
    assert {f.kind for f in check(db_path).items} == {"status_mismatch", "unrecorded"}
