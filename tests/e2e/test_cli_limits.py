"""Durations and retry limits that cannot be kept are refused by the CLI with one line and a
non-zero exit, before any database is opened: no traceback, no new empty database."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_one_line_error, dump, run_cli

CLI = Callable[..., subprocess.CompletedProcess[str]]

BAD = [
    (["propose", "ok", "--reason", "r", "--schedule-in", "99999999999d"], "--schedule-in"),
    (["propose", "ok", "--reason", "r", "--schedule-in", "3000000d"], "--schedule-in"),
    (["propose", "ok", "--reason", "r", "--schedule-in", "3654d"], "ten years"),
    (["propose", "ok", "--reason", "r", "--schedule-in", "9" * 400], "--schedule-in"),
    (["propose", "ok", "--reason", "r", "--expires-in", "3000000d"], "--expires-in"),
    (["propose", "ok", "--reason", "r", "--max-retries", "99999999999999999999"], "retries"),
    (
        [
            "propose-workflow",
            "big",
            "--description",
            "d",
            "--step",
            "ok",
            "--step",
            "ok delay=99999999999d",
        ],
        "step 2 delay",
    ),
    (
        [
            "propose-workflow",
            "big",
            "--description",
            "d",
            "--step",
            "ok",
            "--step",
            "ok delay=1h",
            "--step",
            "ok delay=87672h1s",
        ],
        "step 3 delay",
    ),
    (
        ["propose-workflow", "big", "--description", "d", "--step", "ok delay=1h"],
        "step 1: delay=",
    ),
]


@pytest.mark.sqlite_only("checks that no file was made")
@pytest.mark.parametrize(("args", "expected"), BAD)
def test_a_duration_that_cannot_be_kept_is_one_line_and_no_database(
    db: Path, cli_in_process: CLI, args: list[str], expected: str
) -> None:
    line = assert_one_line_error(cli_in_process(*args))
    assert expected in line, line
    assert not db.exists()


@pytest.mark.parametrize(("args", "expected"), BAD[:1] + BAD[-2:-1])
def test_on_an_existing_database_it_changes_nothing(
    db: Path, args: list[str], expected: str
) -> None:
    """The issue's commands, as a real process, on a database in use."""
    assert run_cli(db, "propose", "ok", "--reason", "first").returncode == 0
    before = dump(db)
    line = assert_one_line_error(run_cli(db, *args))
    assert expected in line
    assert dump(db) == before


def test_ten_years_is_accepted(db: Path, cli_in_process: CLI) -> None:
    result = cli_in_process(
        "propose", "ok", "--reason", "r", "--schedule-in", "3653d", "--max-retries", "1000"
    )
    assert result.returncode == 0, result.stderr
