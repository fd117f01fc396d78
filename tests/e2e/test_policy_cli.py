"""The approval policy and identities through the real CLI, in real processes (issue 20,
items 4, 9 and 10): the database's policy is every process's, ``--actor`` is only a label,
and a runner never starts what its own runbook says needs approval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from operator_core.identity import current_identity

from tests.e2e.conftest import (
    assert_one_line_error,
    cli_env,
    dump,
    query,
    run_cli,
)

ME = current_identity().text


def _ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_actor_labels_cannot_get_around_four_eyes(db: Path) -> None:
    _ok(run_cli(db, "policy", "set", "four-eyes", "on"))
    _ok(run_cli(db, "policy", "set", "approval-mode", "on"))
    pid = _ok(run_cli(db, "--actor", "alice", "propose", "ok", "--reason", "r")).strip()
    before = dump(db)
    for args, env in (
        (["--actor", "bob"], cli_env(db.parent)),
        ([], cli_env(db.parent, OPERATOR_ACTOR="Alice ")),
        ([], cli_env(db.parent, OPERATOR_ACTOR="alice")),
    ):
        line = assert_one_line_error(run_cli(db, *args, "approve", pid, env=env))
        assert "four-eyes rule" in line and ME in line
    assert dump(db) == before
    [row] = query(db, "SELECT proposed_by, proposed_identity, approved_at FROM action_proposals")
    assert (row[0], row[1], row[2]) == ("alice", ME, None)
    audit = json.loads(_ok(run_cli(db, "audit", "tail", "--json")))
    assert [e["actor"] for e in audit if e["event_type"] == "proposed"] == [f"{ME} (alice)"]


def test_a_decision_prints_and_records_who_made_it(db: Path) -> None:
    _ok(run_cli(db, "policy", "set", "approval-mode", "on"))
    pid = _ok(run_cli(db, "propose", "ok", "--reason", "r")).strip()
    out = _ok(run_cli(db, "--actor", "night-shift", "approve", pid))
    assert out.strip() == f"action {pid} approved by {ME} (night-shift)"
    shown = json.loads(_ok(run_cli(db, "actions", "show", pid, "--json")))
    assert shown["identities"]["approved_identity"] == ME
    assert shown["action"]["approved_by"] == "night-shift"


@pytest.mark.sqlite_only("checks that no file was made")
@pytest.mark.parametrize("word", ["enabled", "y", "required"])
def test_an_unknown_on_off_word_is_one_line_and_changes_nothing(cli_in_process, db, word):
    line = assert_one_line_error(
        cli_in_process("propose", "ok", "--reason", "r", OPERATOR_APPROVAL_MODE=word)
    )
    assert "OPERATOR_APPROVAL_MODE must be on or off" in line and repr(word) in line
    assert not db.exists()
    line = assert_one_line_error(cli_in_process("--approval-mode", word, "status"))
    assert "--approval-mode" in line
    line = assert_one_line_error(
        cli_in_process("propose", "ok", "--reason", "r", OPERATOR_FOUR_EYES=word)
    )
    assert "OPERATOR_FOUR_EYES" in line


def test_status_and_policy_show_the_databases_policy(db: Path) -> None:
    _ok(run_cli(db, "policy", "set", "approval-mode", "on", "--reason", "freeze"))
    status = json.loads(_ok(run_cli(db, "status", "--json")))
    assert (status["approval_mode"], status["four_eyes"]) == (True, False)
    assert status["policy_changed_by"] == f"{ME} (tester@e2e)"
    text = _ok(run_cli(db, "status"))
    assert "approval mode on   four-eyes off" in text
    shown = json.loads(_ok(run_cli(db, "policy", "show", "--json")))
    assert shown["approval_mode"] is True and shown["identity"] == ME
    assert "approval-mode on" in _ok(run_cli(db, "policy", "show"))
    again = _ok(run_cli(db, "policy", "set", "approval-mode", "yes"))
    assert "already" in again
    changed = [
        e
        for e in json.loads(_ok(run_cli(db, "audit", "tail", "--json")))
        if e["event_type"] == "policy_changed"
    ]
    assert [(e["event_data"]["to"], e["event_data"]["reason"]) for e in changed] == [
        ("on", "freeze")
    ]
    line = assert_one_line_error(run_cli(db, "policy", "set", "four-eyes", "maybe"))
    assert "four-eyes must be on or off" in line
    line = assert_one_line_error(run_cli(db, "policy", "set", "approval", "on"))
    assert "unknown policy setting" in line


def test_processes_follow_the_database_not_their_environment(db: Path) -> None:
    _ok(run_cli(db, "policy", "set", "approval-mode", "on"))
    # A proposer whose environment says nothing about approval: approval is still required.
    pid = _ok(run_cli(db, "propose", "ok", "--reason", "r")).strip()
    assert query(db, "SELECT requires_approval FROM action_proposals")[0][0] == 1
    _ok(run_cli(db, "run", "--until-idle"))
    assert query(db, "SELECT COUNT(*) FROM action_records")[0][0] == 0
    # A process asking for less safety is refused, and so is one asking for more.
    before = dump(db)
    off = cli_env(db.parent, OPERATOR_APPROVAL_MODE="off")
    line = assert_one_line_error(run_cli(db, "run", "--until-idle", env=off))
    assert "operator policy set approval-mode off" in line
    line = assert_one_line_error(
        run_cli(db, "approve", pid, env=cli_env(db.parent, OPERATOR_FOUR_EYES="1"))
    )
    assert "operator policy set four-eyes on" in line
    assert dump(db) == before
    # What must work whatever the environment says still does.
    assert json.loads(_ok(run_cli(db, "status", "--json", env=off)))["approval_mode"] is True
    _ok(run_cli(db, "kill-switch", "--yes", env=off))


def test_a_runner_asking_for_approval_mode_on_a_database_without_it_refuses_to_run(
    db: Path,
) -> None:
    pid = _ok(run_cli(db, "propose", "ok", "--reason", "r")).strip()  # seeds: off
    on = cli_env(db.parent, OPERATOR_APPROVAL_MODE="on")
    line = assert_one_line_error(run_cli(db, "run", "--until-idle", env=on))
    assert "operator policy set approval-mode on" in line
    assert query(db, "SELECT status FROM action_proposals WHERE id = ?", (int(pid),))[0][0] == (
        "validated"
    )
    assert query(db, "SELECT COUNT(*) FROM action_records")[0][0] == 0


def test_a_mistyped_read_only_setting_stops_the_dashboard_with_one_line(cli_in_process, db):
    assert cli_in_process("policy", "set", "four-eyes", "off").returncode == 0
    line = assert_one_line_error(cli_in_process("tui", OPERATOR_READ_ONLY="ture"))
    assert "OPERATOR_READ_ONLY must be on or off" in line


def _runbook(path: Path, requires_approval: bool) -> Path:
    path.write_text(
        "[actions.touch]\n"
        'description = "Create a marker file"\n'
        'argv = ["touch", "{path}"]\n'
        f"requires_approval = {'true' if requires_approval else 'false'}\n"
        "[actions.touch.params.path]\n"
        'type = "string"\n'
    )
    return path


def test_the_runner_holds_what_its_own_runbook_says_needs_approval(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    lax = _runbook(tmp_path / "lax.toml", requires_approval=False)
    strict = _runbook(tmp_path / "strict.toml", requires_approval=True)
    marker = tmp_path / "ran"
    pid = _ok(
        run_cli(
            db,
            "propose",
            "touch",
            "--param",
            f"path={marker}",
            "--reason",
            "r",
            subject=f"commands:{lax}",
        )
    ).strip()
    _ok(run_cli(db, "run", "--until-idle", subject=f"commands:{strict}"))
    assert not marker.exists()
    shown = json.loads(
        _ok(run_cli(db, "actions", "show", pid, "--json", subject=f"commands:{strict}"))
    )
    assert shown["action"]["status"] == "validated"
    assert shown["action"]["requires_approval"] is True and shown["records"] == []
    [held] = [e for e in shown["audit"] if e["event_type"] == "approval_required"]
    assert held["event_data"]["reason"] == "its definition on this runner requires approval"
    # Once a person approves it, the same runner runs it.
    _ok(run_cli(db, "approve", pid, subject=f"commands:{strict}"))
    _ok(run_cli(db, "run", "--until-idle", subject=f"commands:{strict}"))
    assert marker.exists()
