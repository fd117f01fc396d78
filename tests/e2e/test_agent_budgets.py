"""Agents' proposal budgets through the real CLI on a real file: concurrent proposals from
two processes never pass the limit, the allow-list refuses, every set, clear and refusal is
audited, and bad input is one line that changes nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    assert_one_line_error,
    cli_argv,
    cli_env,
    dump,
    query,
    run_cli,
)

DEMO = "demo"


def _cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(db, *args, subject=DEMO)


def _agent_proposals(db: Path, agent: str) -> int:
    return int(
        query(
            db, "SELECT COUNT(*) FROM action_proposals WHERE proposed_by = ?", (f"agent:{agent}",)
        )[0][0]
    )


def _events(db: Path, kind: str) -> list[dict[str, object]]:
    rows = query(
        db, "SELECT event_data FROM action_audit_log WHERE event_type = ? ORDER BY id", (kind,)
    )
    return [json.loads(r[0]) for r in rows]


@pytest.fixture
def budgeted(db: Path) -> Path:
    done = _cli(db, "agents", "set", "claude", "--max-proposals", "5", "--per", "10m")
    assert done.returncode == 0, done.stderr
    return db


def test_concurrent_proposals_from_two_processes_never_pass_the_budget(budgeted: Path) -> None:
    db = budgeted
    propose = cli_argv(db, "--actor", "agent:claude", "propose", "check_health", subject=DEMO)
    script = (
        f'for i in $(seq 1 6); do {" ".join(propose)} --reason "p$i" >/dev/null 2>>"$0"; done; true'
    )
    procs = [
        subprocess.Popen(
            ["sh", "-c", script, str(db.parent / f"err-{n}.log")], env=cli_env(db.parent)
        )
        for n in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=180) == 0
    assert _agent_proposals(db, "claude") == 5  # 12 tried, at once from two processes
    refusals = _events(db, "agent_proposal_refused")
    assert len(refusals) == 7
    assert all(r["refused"] == "budget" and r["agent"] == "claude" for r in refusals)
    errors = "".join((db.parent / f"err-{n}.log").read_text() for n in range(2)).splitlines()
    assert len(errors) == 7
    assert all(
        line.startswith("operator: agent claude: 5 of 5 proposals per 10m used; next in ")
        for line in errors
    ), errors
    # Another agent has its own budget (none here): it is not held back.
    other = _cli(db, "--actor", "agent:cursor", "propose", "check_health", "--reason", "x")
    assert other.returncode == 0, other.stderr


def test_a_workflow_counts_each_of_its_steps(budgeted: Path) -> None:
    db = budgeted
    steps = ["--description", "look", *["--step", "check_health"] * 3]
    first = _cli(db, "--actor", "agent:claude", "propose-workflow", "wf", *steps)
    assert first.returncode == 0, first.stderr
    second = _cli(db, "--actor", "agent:claude", "propose-workflow", "wf2", *steps)
    line = assert_one_line_error(second)
    assert "agent claude: 3 of 5 proposals per 10m used; next in" in line
    assert query(db, "SELECT COUNT(*) FROM workflows")[0][0] == 1


def test_the_allow_list_refuses_other_actions_and_says_which(db: Path) -> None:
    done = _cli(db, "agents", "set", "bot", "--allow", "check_health", "--allow", "restart_store")
    assert done.returncode == 0, done.stderr
    ok = _cli(
        db,
        "--actor",
        "agent:bot",
        "propose",
        "restart_store",
        "--param",
        "store_id=s1",
        "--reason",
        "stuck",
    )
    assert ok.returncode == 0, ok.stderr
    refused = _cli(
        db,
        "--actor",
        "agent:bot",
        "propose",
        "drain_store",
        "--param",
        "store_id=s1",
        "--reason",
        "no",
    )
    line = assert_one_line_error(refused)
    assert "agent bot: may not propose drain_store" in line
    assert "check_health, restart_store" in line
    assert _agent_proposals(db, "bot") == 1
    (event,) = _events(db, "agent_proposal_refused")
    assert event["refused"] == "allow-list" and event["actions"] == ["drain_store"]


def test_set_list_and_unset_are_shown_and_audited(budgeted: Path) -> None:
    db = budgeted
    for i in range(2):
        _cli(db, "--actor", "agent:claude", "propose", "check_health", "--reason", f"r{i}")
    _cli(db, "agents", "set", "bot", "--allow", "check_health")
    listed = _cli(db, "agents", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t")[:5] == ["AGENT", "LIMIT", "USED", "FULL UNTIL", "ALLOWED"]
    assert lines[1].split("\t")[:5] == ["bot", "no limit", "-", "-", "check_health"]
    assert lines[2].split("\t")[:5] == ["claude", "5 per 10m", "2/5", "-", "any"]
    as_json = json.loads(_cli(db, "agents", "list", "--json").stdout)
    assert as_json[1]["used"] == 2 and as_json[1]["per_seconds"] == 600

    assert _cli(db, "agents", "unset", "claude").stdout.strip() == "agent claude: budget removed"
    assert "had no budget" in _cli(db, "agents", "unset", "claude").stdout
    sets = _events(db, "agent_budget_set")
    assert [s["agent"] for s in sets] == ["claude", "bot"]
    assert sets[0]["max_proposals"] == 5 and sets[0]["per_seconds"] == 600
    assert _events(db, "agent_budget_cleared") == [{"agent": "claude"}]
    # Without its budget the agent proposes freely again.
    for i in range(6):
        done = _cli(db, "--actor", "agent:claude", "propose", "check_health", "--reason", f"{i}")
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-proposals", "5", "--per", "0"], "--per: a window must be longer than zero"),
        (["--max-proposals", "-1", "--per", "10m"], "--max-proposals must be from 0"),
        (["--max-proposals", "5", "--per", "soon"], "--per: cannot read 'soon'"),
        (["--max-proposals", "5"], "give --max-proposals and --per together"),
        (["--allow", "nosuch"], "--allow: unknown action 'nosuch' (available: check_health"),
        ([], "nothing to set"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    budgeted: Path, args: list[str], says: str
) -> None:
    before = dump(budgeted)
    line = assert_one_line_error(_cli(budgeted, "agents", "set", "claude", *args))
    assert says in line, line
    assert dump(budgeted) == before


def test_a_bad_agent_name_is_refused(db: Path) -> None:
    line = assert_one_line_error(_cli(db, "agents", "set", "a:b", "--allow", "check_health"))
    assert "agent name 'a:b' must be" in line
