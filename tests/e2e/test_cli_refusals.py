"""Bad input gets one line and changes nothing (issue 23, items 1 to 6): ids out of range,
empty options, files that hold no Operator database, directories that do not exist, and
values that were accepted though wrong."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from operator_core.db.schema import LATEST_VERSION

from tests.e2e.conftest import assert_one_line_error, cli_env, dump, query, run_cli, seed

CLI = Callable[..., subprocess.CompletedProcess[str]]
HUGE = "99999999999999999999999"


def _proposal_and_workflow(db: Path) -> None:
    async def go(ex: object) -> None:
        await ex.propose_action("guarded", {}, "needs a human")  # type: ignore[attr-defined]
        await ex.propose_workflow("wf", "d", [{"action_name": "ok"}])  # type: ignore[attr-defined]

    seed(db, go, approval_mode=True)


@pytest.mark.parametrize(
    "args",
    [
        ["approve", HUGE],
        ["reject", HUGE, "--reason", "r"],
        ["cancel", HUGE],
        ["actions", "show", HUGE],
        ["workflows", "show", HUGE],
        ["approve", "--workflow", HUGE],
        ["cancel", "--workflow", HUGE],
        ["ticket", "show", HUGE],
        ["ticket", "ack", HUGE],
        ["propose", "ok", "--reason", "r", "--ticket", HUGE],
        pytest.param(["audit", "export", "out.ledger", "--from", HUGE]),
        ["approve", "0"],
        ["approve", "--", "-5"],
    ],
)
def test_an_id_out_of_range_is_one_line_and_changes_nothing(
    db: Path, cli_in_process: CLI, args: list[str]
) -> None:
    _proposal_and_workflow(db)
    before = dump(db)
    line = assert_one_line_error(cli_in_process(*args))
    assert "9223372036854775807" in line, line
    assert dump(db) == before


def test_an_empty_db_option_is_one_line(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "operator_core.cli", "--db", "", "status"]
    result = subprocess.run(
        argv, env=cli_env(tmp_path), capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert "--db is empty" in assert_one_line_error(result)
    assert list(tmp_path.iterdir()) == []


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE foo (x)")
    conn.execute("INSERT INTO foo VALUES (1)")
    conn.commit()
    conn.close()


READERS = [
    ["status"],
    ["actions", "list"],
    ["actions", "show", "1"],
    ["workflows", "list"],
    ["workflows", "show", "1"],
    ["audit", "tail"],
    ["audit", "verify"],
    ["policy", "show"],
    ["ticket", "list"],
    ["ticket", "show", "1"],
]


@pytest.mark.sqlite_only("files at the path: empty, or another program's database")
@pytest.mark.parametrize("args", READERS, ids=" ".join)
@pytest.mark.parametrize("kind", ["empty file", "foreign database"])
def test_a_read_never_creates_an_operator_database(
    db: Path, cli_in_process: CLI, args: list[str], kind: str
) -> None:
    if kind == "empty file":
        db.touch()
    else:
        _foreign(db)
    before = db.read_bytes()
    line = assert_one_line_error(cli_in_process(*args))
    assert "not an Operator database" in line or "no Operator database" in line, line
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]  # no lock, no journal


@pytest.mark.sqlite_only("an empty file at the path")
def test_a_write_command_on_an_empty_file_creates_the_database(
    db: Path, cli_in_process: CLI
) -> None:
    db.touch()
    assert cli_in_process("approve", "1").returncode == 1  # acting on work needs some
    assert db.read_bytes() == b""
    made = cli_in_process("propose", "ok", "--reason", "r")
    assert made.returncode == 0, made.stderr
    assert query(db, "PRAGMA user_version")[0][0] == LATEST_VERSION


@pytest.mark.sqlite_only("an older SQLite file (user_version); PostgreSQL's: test_pg_schema")
def test_a_read_does_not_migrate_an_older_database(db: Path, cli_in_process: CLI) -> None:
    _proposal_and_workflow(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION - 1}")
    conn.close()
    before = dump(db)
    for args in (["status"], ["actions", "list"]):
        line = assert_one_line_error(cli_in_process(*args))
        assert "older" in line and "does not upgrade" in line, line
    assert dump(db) == before


def test_an_explicit_database_in_a_missing_directory_is_refused(
    tmp_path: Path, cli_in_process: CLI
) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    for args in (
        ["propose", "ok", "--reason", "r"],
        ["propose-workflow", "w", "--description", "d", "--step", "ok"],
        ["ticket", "open", "t"],
        ["policy", "set", "four-eyes", "on"],
        ["run", "--until-idle"],
    ):
        result = run_cli(missing, *args)
        assert "no directory" in assert_one_line_error(result)
    assert not (tmp_path / "nonexistent").exists()


def test_the_default_location_is_created_when_missing(tmp_path: Path) -> None:
    env = cli_env(tmp_path)  # XDG_STATE_HOME=tmp/state, which does not exist yet
    argv = [sys.executable, "-m", "operator_core.cli", "--subject", "demo"]
    made = subprocess.run(
        [*argv, "propose", "check_health", "--reason", "r"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "state" / "operator" / "operator.db").is_file()


ACCEPTED_BUT_WRONG = [
    (["propose-workflow", "", "--description", "d", "--step", "ok"], "name is blank"),
    (["propose-workflow", "   ", "--description", "d", "--step", "ok"], "name is blank"),
    (["propose-workflow", "w" * 201, "--description", "d", "--step", "ok"], "limit is 200"),
    (["propose-workflow", "w", "--step", "ok"], "needs a description"),
    (["propose-workflow", "w", "--description", " ", "--step", "ok"], "needs a description"),
    (["propose-workflow", "w", "--description", "d", "--step", "ok delay=5m"], "step 1: delay="),
    (["--actor", "", "propose", "ok", "--reason", "r"], "--actor is blank"),
    (["--actor", "  ", "propose", "ok", "--reason", "r"], "--actor is blank"),
    (["--actor", "a" * 201, "propose", "ok", "--reason", "r"], "limit is 200"),
    (["--subject", "", "propose", "ok", "--reason", "r"], "--subject is empty"),
    (["propose", "ok", "--reason", "r", "--max-retries", "1000000"], "--max-retries"),
    (["propose", "ok", "--reason", "r" * 120_000], "limit is 10,000"),
    (["propose", "ok", "--reason", "r", "-p", "seconds=" + "1" * 120_000], "limit is 10,000"),
    (
        ["propose-workflow", "w", "--description", "d" * 10_001, "--step", "ok"],
        "limit is 10,000",
    ),
    pytest.param(["audit", "tail", "-n", "-3"], "-n"),
    pytest.param(["audit", "tail", "-n", "0"], "-n"),
    (["actions", "list", "--limit", "-1"], "--limit"),
    (["workflows", "list", "--limit", "0"], "--limit"),
]


@pytest.mark.parametrize(("args", "expected"), ACCEPTED_BUT_WRONG, ids=lambda a: str(a)[:40])
def test_values_that_were_accepted_though_wrong_are_refused(
    db: Path, cli_in_process: CLI, args: list[str], expected: str
) -> None:
    _proposal_and_workflow(db)
    before = dump(db)
    line = assert_one_line_error(cli_in_process(*args))
    assert expected in line, line
    assert dump(db) == before


def test_the_demo_takes_a_store_number_as_its_id(db: Path) -> None:
    """The seeds' own example: ``to_store_id: "2"``; the system the demo imitates numbers its
    stores, so "2" and "s2" name the same store."""
    env = cli_env(db.parent, OPERATOR_DEMO_SPEED="1000", OPERATOR_DEMO_FAILURE_RATE="0")
    for store in ("2", "s3"):
        made = run_cli(
            db,
            "propose",
            "transfer_leader",
            "-p",
            "region_id=7",
            "-p",
            f"to_store_id={store}",
            "--reason",
            "rebalance",
            env=env,
            subject="demo",
        )
        assert made.returncode == 0, made.stderr
    ran = run_cli(db, "run", "--until-idle", env=env, subject="demo")
    assert ran.returncode == 0, ran.stderr
    rows = query(db, "SELECT proposal_id, success, result_data FROM action_records ORDER BY 1")
    assert [(r[0], r[1]) for r in rows] == [(1, 1), (2, 1)]
    assert [json.loads(r[2])["to_store"] for r in rows] == ["s2", "s3"]
    refused = run_cli(
        db,
        "propose",
        "transfer_leader",
        "-p",
        "region_id=7",
        "-p",
        "to_store_id=two",
        "--reason",
        "r",
        env=env,
        subject="demo",
    )
    assert "to_store_id" in assert_one_line_error(refused)
