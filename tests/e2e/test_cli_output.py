"""One voice (issue 23, item 10): one error prefix, JSON that keeps non-ASCII text as itself,
one timestamp form (UTC with a Z) in every output, ``propose-workflow --json`` giving the
workflow, ``--version``, and a group without its command printing its usage once."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_one_line_error, seed

CLI = Callable[..., subprocess.CompletedProcess[str]]

# Anything that looks like a date and a time, with whatever follows it up to a space.
STAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?\S*")
UTC_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["approve", "77"],  # the engine's error
        ["approve"],  # a usage error
        ["approve", "x"],  # a value click refuses
        ["frobnicate"],  # an unknown command
        ["propose", "ok", "--reason", "r", "--schedule-in", "soon"],  # the CLI's own check
        ["kill-switch"],
    ],
)
def test_every_error_has_the_operator_prefix(
    db: Path, cli_in_process: CLI, args: list[str]
) -> None:
    seed(db, lambda ex: ex.db.data_version())
    line = assert_one_line_error(cli_in_process(*args))
    assert line.startswith("operator: "), line
    assert "error:" not in line


def test_json_keeps_non_ascii_text_and_escapes_only_what_is_unsafe(
    db: Path, cli_in_process: CLI
) -> None:
    reason = "café 東京 \u202eevil \x7f end"
    out = _ok(cli_in_process("propose", "ok", "--reason", reason, "--json"))
    assert "café 東京" in out
    assert "\u202e" not in out and "\x7f" not in out
    assert "\\u202e" in out and "\\u007f" in out
    assert json.loads(out)["reason"] == reason
    shown = _ok(cli_in_process("actions", "show", "1", "--json"))
    assert "café 東京" in shown and json.loads(shown)["action"]["reason"] == reason


def _stamps(text: str) -> list[str]:
    return STAMP.findall(text)


def test_every_output_writes_times_in_utc_with_a_z(db: Path, cli_in_process: CLI) -> None:
    _ok(cli_in_process("propose", "ok", "--reason", "r", "--schedule-in", "1h"))
    _ok(cli_in_process("ticket", "open", "disk full"))
    _ok(cli_in_process("kill-switch", "--yes"))
    _ok(cli_in_process("resume", "--yes"))
    _ok(cli_in_process("policy", "set", "four-eyes", "on"))
    seen = 0
    for args in (
        ["status", "--json"],
        ["policy", "show"],
        ["policy", "show", "--json"],
        ["actions", "list"],
        ["actions", "list", "--json"],
        ["actions", "show", "1"],
        ["actions", "show", "1", "--json"],
        ["audit", "tail"],
        ["audit", "tail", "--json"],
        ["ticket", "list"],
        ["ticket", "show", "1"],
        ["ticket", "show", "1", "--json"],
    ):
        out = _ok(cli_in_process(*args))
        stamps = _stamps(out)
        assert stamps, (args, out)
        for stamp in stamps:
            assert UTC_Z.fullmatch(stamp.rstrip('",')), (args, stamp)
        seen += len(stamps)
    assert seen > 20


def test_propose_workflow_json_is_the_workflow(db: Path, cli_in_process: CLI) -> None:
    made = json.loads(
        _ok(
            cli_in_process(
                "propose-workflow",
                "w",
                "--description",
                "two steps",
                "--step",
                "ok",
                "--step",
                "ok seconds=0",
                "--json",
            )
        )
    )
    shown = json.loads(_ok(cli_in_process("workflows", "show", str(made["id"]), "--json")))
    shown.pop("identities")
    assert made == shown
    assert [s["execution_order"] for s in made["steps"]] == [0, 1]


def test_version(cli_in_process: CLI) -> None:
    result = cli_in_process("--version")
    assert result.returncode == 0 and result.stderr == ""
    assert re.fullmatch(r"operator \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout


@pytest.mark.parametrize(
    "group",
    [
        pytest.param("audit"),
        "actions",
        "workflows",
        "policy",
        "ticket",
    ],
)
def test_a_group_without_its_command_prints_its_usage_once_on_stderr(
    cli_in_process: CLI, group: str
) -> None:
    result = cli_in_process(group)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("Usage:") == 1
    assert f"Usage: operator {group} [OPTIONS] COMMAND" in result.stderr
    assert "Traceback" not in result.stderr
