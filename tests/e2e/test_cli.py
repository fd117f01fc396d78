"""The ``operator`` command as a script sees it: exact forms, --json output, and bad input
that gets one line on stderr, a non-zero exit and changes nothing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.identity import current_identity

from tests.e2e.conftest import (
    assert_one_line_error,
    cli_env,
    dump,
    query,
    run_cli,
    seed,
)


def ok_json(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------------- happy paths


def test_propose_prints_id_and_json_then_list_and_show(db: Path) -> None:
    first = run_cli(db, "propose", "ok", "--param", "seconds=0", "--reason", "warm up")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "1"

    second = ok_json(
        run_cli(
            db,
            "propose",
            "flaky",
            "--param",
            "times=1",
            "--reason",
            "retry me",
            "--max-retries",
            "2",
            "--schedule-in",
            "5m",
            "--json",
        )
    )
    assert second["id"] == 2
    assert second["status"] == "validated"
    assert second["parameters"] == {"times": 1}  # typed from the string on the command line
    assert second["max_retries"] == 2
    assert second["scheduled_at"] is not None

    listed = ok_json(run_cli(db, "actions", "list", "--json"))
    assert [a["id"] for a in listed] == [2, 1]
    validated = ok_json(run_cli(db, "actions", "list", "--status", "validated", "--json"))
    assert {a["id"] for a in validated} == {1, 2}

    shown = ok_json(run_cli(db, "actions", "show", "2", "--json"))
    assert shown["action"]["action_name"] == "flaky"
    assert shown["action"]["reason"] == "retry me"
    assert shown["records"] == []
    assert shown["audit"][0]["event_type"] == "proposed"
    assert "execution_started" not in {e["event_type"] for e in shown["audit"]}
    # The OS account, and the --actor / OPERATOR_ACTOR label beside it.
    assert shown["audit"][0]["actor"] == f"{current_identity().text} (tester@e2e)"


def test_run_until_idle_executes_due_work_and_leaves_scheduled(db: Path) -> None:
    seed(db, lambda ex: ex.propose_action("ok", {}, "now"))
    seed(db, lambda ex: ex.propose_action("ok", {}, "later", schedule_in=3600))
    result = run_cli(db, "run", "--until-idle", "--lease-seconds", "1")
    assert result.returncode == 0, result.stderr
    assert "1 completed" in result.stderr
    rows = {r["id"]: r["status"] for r in query(db, "SELECT id, status FROM action_proposals")}
    assert rows == {1: "completed", 2: "validated"}
    records = query(db, "SELECT proposal_id, success FROM action_records")
    assert [(r[0], r[1]) for r in records] == [(1, 1)]


def test_workflow_proposed_approved_once_and_run_to_completion(db: Path) -> None:
    env = cli_env(db.parent, OPERATOR_APPROVAL_MODE="on")
    made = ok_json(
        run_cli(
            db,
            "propose-workflow",
            "rebalance",
            "--description",
            "move and check",
            "--step",
            "ok seconds=0",
            "--step",
            "ok seconds=0.01",
            "--json",
            env=env,
        )
    )
    wf_id, step_ids = made["id"], [s["id"] for s in made["steps"]]
    assert made["name"] == "rebalance" and made["status"] == "pending"
    assert len(step_ids) == 2

    # Nothing runs before the workflow is approved.
    idle = run_cli(db, "run", "--until-idle", env=env)
    assert idle.returncode == 0, idle.stderr
    assert query(db, "SELECT COUNT(*) FROM action_records")[0][0] == 0

    approved = run_cli(db, "approve", str(wf_id), "--workflow", env=env)
    assert approved.returncode == 0, approved.stderr
    ran = run_cli(db, "run", "--until-idle", env=env)
    assert ran.returncode == 0, ran.stderr

    shown = ok_json(run_cli(db, "workflows", "show", str(wf_id), "--json"))
    assert shown["status"] == "completed"
    assert shown["approved_by"] == "tester@e2e"
    assert [s["status"] for s in shown["steps"]] == ["completed", "completed"]
    first, second = (
        query(
            db, "SELECT started_at, completed_at FROM action_records WHERE proposal_id = ?", (i,)
        )[0]
        for i in step_ids
    )
    assert second["started_at"] >= first["completed_at"]  # in order, never overlapping
    listed = ok_json(run_cli(db, "workflows", "list", "--json"))
    assert [w["id"] for w in listed] == [wf_id]


def test_approve_reject_cancel_actions_and_workflows(db: Path) -> None:
    env = cli_env(db.parent, OPERATOR_APPROVAL_MODE="on")
    for _ in range(3):
        seed(db, lambda ex: ex.propose_action("ok", {}, "tidy up"), approval_mode=True)
    for _ in range(2):
        seed(
            db,
            lambda ex: ex.propose_workflow(
                "wf", "two steps", [{"action_name": "ok"}, {"action_name": "ok"}]
            ),
            approval_mode=True,
        )

    assert run_cli(db, "approve", "1", env=env).returncode == 0
    rejected = run_cli(db, "reject", "2", "--reason", "not now", env=env)
    assert rejected.returncode == 0, rejected.stderr
    assert "action 2 rejected" in rejected.stdout
    assert run_cli(db, "cancel", "3", env=env).returncode == 0
    assert (
        run_cli(db, "reject", "1", "--workflow", "--reason", "wrong plan", env=env).returncode == 0
    )
    assert run_cli(db, "cancel", "2", "--workflow", env=env).returncode == 0

    actions = {r["id"]: dict(r) for r in query(db, "SELECT * FROM action_proposals")}
    assert actions[1]["approved_by"] == "tester@e2e" and actions[1]["status"] == "validated"
    assert actions[2]["status"] == "cancelled" and actions[2]["rejection_reason"] == "not now"
    assert actions[3]["status"] == "cancelled"
    assert all(actions[i]["status"] == "cancelled" for i in (4, 5, 6, 7))
    workflows = {r["id"]: dict(r) for r in query(db, "SELECT * FROM workflows")}
    assert workflows[1]["status"] == "cancelled" and workflows[1]["rejected_by"] == "tester@e2e"
    assert workflows[2]["status"] == "cancelled"
    events = [
        (r["proposal_id"], r["workflow_id"], r["event_type"])
        for r in query(
            db,
            "SELECT * FROM action_audit_log WHERE event_type IN ('approved', 'rejected', "
            "'cancelled', 'workflow_rejected', 'workflow_cancelled') ORDER BY id",
        )
    ]
    assert (1, None, "approved") in events
    assert (2, None, "rejected") in events
    assert (3, None, "cancelled") in events
    assert (None, 1, "workflow_rejected") in events
    assert (None, 2, "workflow_cancelled") in events


def test_kill_switch_blocks_proposals_until_resume(db: Path) -> None:
    seed(db, lambda ex: ex.propose_action("ok", {}, "a"), approval_mode=True)
    seed(db, lambda ex: ex.propose_action("ok", {}, "b", schedule_in=600), approval_mode=True)
    killed = ok_json(run_cli(db, "kill-switch", "--yes", "--json"))
    assert killed["cancelled_actions"] == [1, 2]

    status = ok_json(run_cli(db, "status", "--json"))
    assert status["safety_mode"] == "observe"
    assert status["by_status"] == {"cancelled": 2}

    refused = run_cli(db, "propose", "ok", "--reason", "sneak in")
    assert "OBSERVE" in assert_one_line_error(refused)
    assert query(db, "SELECT COUNT(*) FROM action_proposals")[0][0] == 2

    resumed = run_cli(db, "resume", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert query(db, "SELECT mode FROM safety_state")[0][0] == "execute"
    # Resume revives nothing.
    assert {r[0] for r in query(db, "SELECT status FROM action_proposals")} == {"cancelled"}
    assert run_cli(db, "propose", "ok", "--reason", "after resume").stdout.strip() == "3"


def test_status_text_and_audit_tail(db: Path) -> None:
    seed(db, lambda ex: ex.propose_action("ok", {}, "one"))
    assert run_cli(db, "run", "--until-idle").returncode == 0
    text = run_cli(db, "status")
    assert text.returncode == 0, text.stderr
    assert "EXECUTE" in text.stdout and "completed 1" in text.stdout

    tail = run_cli(db, "audit", "tail", "-n", "3")
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.strip().splitlines()
    assert len(lines) == 3
    assert "completed" in lines[-1]
    events = ok_json(run_cli(db, "audit", "tail", "--json"))
    kinds = [e["event_type"] for e in events]
    assert kinds[:2] == ["policy_seeded", "proposed"] and kinds[-1] == "completed"
    assert kinds.index("execution_started") < kinds.index("completed")

    verified = run_cli(db, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "OK" in verified.stdout


@pytest.mark.sqlite_only("edits the file with sqlite3; PostgreSQL's tampering: test_pg_audit")
def test_audit_verify_detects_an_edit_made_around_the_triggers(db: Path) -> None:
    seed(db, lambda ex: ex.propose_action("ok", {}, "honest"))
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE action_audit_log SET actor = 'mallory' WHERE id = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM action_audit_log WHERE id = 1")
        conn.execute("DROP TRIGGER action_audit_log_no_update")
        conn.execute("UPDATE action_audit_log SET actor = 'mallory' WHERE id = 1")
    finally:
        conn.close()
    line = assert_one_line_error(run_cli(db, "audit", "verify"))
    assert "TAMPERED" in line and "event 1" in line


@pytest.mark.sqlite_only("edits the file with sqlite3; PostgreSQL's tampering: test_pg_audit")
def test_audit_verify_detects_a_deleted_event(db: Path) -> None:
    seed(db, lambda ex: ex.propose_action("ok", {}, "honest"))
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER action_audit_log_no_delete")
        conn.execute(
            "DELETE FROM action_audit_log WHERE id = (SELECT MAX(id) FROM action_audit_log)"
        )
    finally:
        conn.close()
    assert "TAMPERED" in assert_one_line_error(run_cli(db, "audit", "verify"))


# ---------------------------------------------------------------------- bad input

Setup = Callable[[Path], None]
CLI = Callable[..., Any]


def _nothing(db: Path) -> None:
    seed(db, lambda ex: ex.db.data_version())


def _pending_guarded(db: Path) -> None:
    seed(db, lambda ex: ex.propose_action("guarded", {}, "needs a human"))


def _cancelled_guarded(db: Path) -> None:
    async def go(ex: ActionExecutor) -> None:
        p = await ex.propose_action("guarded", {}, "needs a human")
        assert p.id is not None
        await ex.cancel_proposal(p.id, "someone")

    seed(db, go)


def _completed_ok(db: Path) -> None:
    async def go(ex: ActionExecutor) -> None:
        p = await ex.propose_action("ok", {}, "done already")
        assert p.id is not None
        await ex.execute_proposal(p.id)

    seed(db, go)


def _workflow(db: Path) -> None:
    seed(db, lambda ex: ex.propose_workflow("wf", "d", [{"action_name": "ok"}]), approval_mode=True)


def _killed(db: Path) -> None:
    seed(db, lambda ex: ex.kill_switch("someone"))


BAD_INPUT: list[tuple[str, Setup, list[str], str]] = [
    ("unknown action", _nothing, ["propose", "nosuch", "--reason", "r"], "unknown action"),
    (
        "bad parameter type",
        _nothing,
        ["propose", "flaky", "--param", "times=often", "--reason", "r"],
        "times",
    ),
    ("missing required parameter", _nothing, ["propose", "flaky", "--reason", "r"], "times"),
    (
        "unknown parameter",
        _nothing,
        ["propose", "ok", "--param", "colour=red", "--reason", "r"],
        "colour",
    ),
    (
        "malformed parameter",
        _nothing,
        ["propose", "ok", "--param", "seconds", "--reason", "r"],
        "KEY=VALUE",
    ),
    ("missing reason", _nothing, ["propose", "ok"], "reason"),
    (
        "bad duration",
        _nothing,
        ["propose", "ok", "--reason", "r", "--schedule-in", "soon"],
        "duration",
    ),
    (
        "bad workflow step",
        _nothing,
        ["propose-workflow", "wf", "--description", "d", "--step", "ok", "--step", "flaky times=x"],
        "step 2",
    ),
    ("unknown ticket", _nothing, ["propose", "ok", "--reason", "r", "--ticket", "77"], "ticket"),
    (
        "negative retries",
        _nothing,
        ["propose", "ok", "--reason", "r", "--max-retries", "-1"],
        "negative",
    ),
    ("workflow without steps", _nothing, ["propose-workflow", "wf"], "--step"),
    ("bad approval mode", _nothing, ["--approval-mode", "maybe", "status"], "approval-mode"),
    ("unknown id to approve", _pending_guarded, ["approve", "999"], "999"),
    ("unknown id to show", _pending_guarded, ["actions", "show", "999"], "999"),
    ("unknown id to cancel", _pending_guarded, ["cancel", "999"], "999"),
    ("unknown workflow", _workflow, ["approve", "999", "--workflow"], "999"),
    ("approving a cancelled action", _cancelled_guarded, ["approve", "1"], "cancelled"),
    ("approving a workflow step directly", _workflow, ["approve", "1"], "workflow"),
    ("cancelling a completed action", _completed_ok, ["cancel", "1"], "completed"),
    ("rejecting without a reason", _pending_guarded, ["reject", "1"], "reason"),
    ("rejecting a workflow without a reason", _workflow, ["reject", "1", "--workflow"], "reason"),
    ("kill switch without --yes", _pending_guarded, ["kill-switch"], "--yes"),
    ("resume without --yes", _killed, ["resume"], "--yes"),
    ("proposing under the kill switch", _killed, ["propose", "ok", "--reason", "r"], "OBSERVE"),
    ("unknown status filter", _nothing, ["actions", "list", "--status", "done"], "status"),
    ("id that is not a number", _pending_guarded, ["approve", "one"], "ID"),
    ("concurrency below one", _pending_guarded, ["run", "--concurrency", "0"], "concurrency"),
]


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [pytest.param(s, a, e, id=name) for name, s, a, e in BAD_INPUT],
)
def test_bad_input_is_one_line_and_changes_nothing(
    db: Path, cli_in_process: CLI, setup: Setup, args: list[str], expected: str
) -> None:
    setup(db)
    before = dump(db)
    line = assert_one_line_error(cli_in_process(*args))
    assert expected.lower() in line.lower()
    assert dump(db) == before


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        pytest.param("no_such_module_xyz:Subject", "no_such_module_xyz", id="missing module"),
        pytest.param("tests.support.subjects:NoSuchClass", "NoSuchClass", id="missing class"),
        pytest.param("nonsense", "nonsense", id="not a subject spec"),
        pytest.param("json:JSONDecoder", "not a Subject", id="not a subject class"),
    ],
)
def test_bad_subject_is_one_line_and_changes_nothing(
    db: Path, cli_in_process: CLI, subject: str, expected: str
) -> None:
    _nothing(db)
    before = dump(db)
    line = assert_one_line_error(cli_in_process("propose", "ok", "--reason", "r", subject=subject))
    assert expected in line
    assert dump(db) == before


@pytest.mark.sqlite_only("holds SQLite's write lock on the file")
def test_locked_database_is_one_line_and_changes_nothing(db: Path) -> None:
    _pending_guarded(db)
    before = dump(db)
    env = cli_env(db.parent, OPERATOR_BUSY_TIMEOUT="0.2")
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        for args in (
            ["propose", "ok", "--reason", "r"],
            ["approve", "1"],
            ["resume", "--yes"],  # the kill switch works while locked: test_kill_switch_locked
        ):
            line = assert_one_line_error(run_cli(db, *args, env=env))
            assert "locked" in line
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert dump(db) == before


@pytest.mark.sqlite_only("damages the file")
def test_corrupt_database_is_one_line_and_untouched(db: Path) -> None:
    garbage = bytes(range(256)) * 64
    db.write_bytes(garbage)
    for args in (["status"], ["propose", "ok", "--reason", "r"], ["audit", "verify"]):
        line = assert_one_line_error(run_cli(db, *args))
        assert "corrupt" in line or "not a database" in line
    assert db.read_bytes() == garbage


@pytest.mark.sqlite_only("sets SQLite's user_version; PostgreSQL's: test_pg_schema")
def test_database_from_a_newer_version_is_refused(db: Path) -> None:
    _pending_guarded(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = dump(db)
    for args in (["status"], ["approve", "1"]):
        line = assert_one_line_error(run_cli(db, *args))
        assert "newer" in line and "99" in line
    assert dump(db) == before


def test_database_path_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-file.db"
    folder.mkdir()
    for args in (["status"], ["approve", "1"]):
        line = assert_one_line_error(run_cli(folder, *args))
        assert "directory" in line
    assert list(folder.iterdir()) == []
