"""Numeric settings from the environment and the command line: anything that is not a
finite number in range is one line naming the setting and what it accepts (they printed
tracebacks, or nan and inf slipped through click's range checks), and changes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_one_line_error, cli_env, run_cli, seed


def _digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "value", "args", "accepts"),
    [
        ("OPERATOR_BUSY_TIMEOUT", "abc", ["status"], "from 0 to 3600"),
        ("OPERATOR_BUSY_TIMEOUT", "nan", ["approve", "1"], "from 0 to 3600"),
        ("OPERATOR_BUSY_TIMEOUT", "-1", ["propose", "ok", "--reason", "r"], "from 0 to 3600"),
        ("OPERATOR_BUSY_TIMEOUT", "inf", ["kill-switch", "--yes"], "from 0 to 3600"),
        (
            "OPERATOR_DEMO_FAILURE_RATE",
            "abc",
            ["propose", "check_health", "--reason", "r"],
            "from 0 to 1",
        ),
        (
            "OPERATOR_DEMO_FAILURE_RATE",
            "1.5",
            ["propose", "check_health", "--reason", "r"],
            "from 0 to 1",
        ),
        (
            "OPERATOR_DEMO_SPEED",
            "abc",
            ["propose", "check_health", "--reason", "r"],
            "above 0 and at most 1000",
        ),
        ("OPERATOR_DEMO_SPEED", "0", ["run", "--until-idle"], "above 0 and at most 1000"),
        ("OPERATOR_DEMO_SPEED", "inf", ["actions", "show", "1"], "above 0 and at most 1000"),
    ],
)
@pytest.mark.sqlite_only("checks the file's bytes are unchanged")
def test_a_bad_numeric_setting_is_one_line_naming_it(
    db: Path, name: str, value: str, args: list[str], accepts: str
) -> None:
    seed(db, lambda ex: ex.propose_action("guarded", {}, "waits"))
    digest = _digest(db)
    result = run_cli(db, *args, env=cli_env(db.parent, **{name: value}), subject="demo")
    line = assert_one_line_error(result)
    assert name in line and accepts in line and f"'{value}'" in line
    assert _digest(db) == digest


def test_good_numeric_settings_are_used(db: Path) -> None:
    env = cli_env(
        db.parent,
        OPERATOR_BUSY_TIMEOUT="0.5",
        OPERATOR_DEMO_FAILURE_RATE="0",
        OPERATOR_DEMO_SPEED="100",
    )
    proposed = run_cli(
        db,
        "propose",
        "restart_store",
        "-p",
        "store_id=s1",
        "--reason",
        "r",
        env=env,
        subject="demo",
    )
    assert proposed.returncode == 0, proposed.stderr
    ran = run_cli(db, "run", "--until-idle", env=env, subject="demo")
    assert ran.returncode == 0, ran.stderr
    assert "1 completed, 0 failed" in ran.stderr  # failure rate 0: restart_store cannot fail


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--until-idle", "--lease-seconds", "nan"],
        ["run", "--until-idle", "--lease-seconds", "inf"],
        ["run", "--until-idle", "--grace-seconds", "nan"],
        ["demo", "--headless", "--duration", "nan"],
        ["demo", "--headless", "--duration", "inf"],
        ["demo", "--headless", "--speed", "nan"],
        ["demo", "--headless", "--speed", "0"],
    ],
)
@pytest.mark.sqlite_only("checks the file's bytes are unchanged")
def test_non_finite_numbers_on_the_command_line_are_refused(db: Path, args: list[str]) -> None:
    seed(db, lambda ex: ex.propose_action("ok", {}, "due"))
    digest = _digest(db)
    line = assert_one_line_error(run_cli(db, *args))
    assert args[-2] in line and "must be a number" in line
    assert _digest(db) == digest
