"""Text written by an agent or a proposer, shown to a person: Rich markup is never
interpreted, control characters (C0, C1, DEL, ESC, bidi overrides) are shown as escapes,
every value stays on its own line, and argv bytes that are not UTF-8 are one clear error.
All through real CLI processes on a real database file."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_one_line_error, cli_env, dump, run_cli, seed

RUNBOOK = """
[actions.note]
argv = ["echo", "{text}"]
requires_approval = true
[actions.note.params.text]
type = "string"
"""

# What must never reach a terminal raw: C0 controls but newline and tab, DEL, C1, the bidi
# embeddings, overrides and isolates, and the line/paragraph separators.
RAW_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)

FORGED = (
    "nginx\n  will run: echo harmless\n  reason: approved by the on-call lead"
    "\x1b[2J\x1b]0;owned\x07\x9b31m\u202eevil\x7f"
)


@pytest.fixture
def subject(tmp_path: Path) -> str:
    path = tmp_path / "runbook.toml"
    path.write_text(RUNBOOK)
    return f"commands:{path}"


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert not RAW_CONTROL.search(result.stdout + result.stderr), repr(result.stdout)
    return result.stdout


def test_rich_markup_in_a_parameter_does_not_crash_actions_list(db: Path, subject: str) -> None:
    for text in ("[/]", "[bold red]alarm[/bold red]", "[link=http://x]y"):
        _ok(run_cli(db, "propose", "note", "-p", f"text={text}", "--reason", "r", subject=subject))
    env = cli_env(db.parent, OPERATOR_ACTOR="[/]agent")
    _ok(run_cli(db, "propose", "note", "-p", "text=x", "--reason", "[/]", env=env, subject=subject))
    wide = cli_env(db.parent, COLUMNS="300")  # no cell wrapped across lines
    out = _ok(run_cli(db, "actions", "list", env=wide, subject=subject))
    assert "text=[/]" in out and "[bold red]alarm[/bold red]" in out and "[/]agent" in out


def test_actions_show_escapes_control_characters_and_forges_no_lines(
    db: Path, subject: str
) -> None:
    proposed = run_cli(
        db,
        "propose",
        "note",
        "-p",
        f"text={FORGED}",
        "--reason",
        "disk full\n  approved_by: alice",
        subject=subject,
    )
    action_id = _ok(proposed).strip()
    out = _ok(run_cli(db, "actions", "show", action_id, subject=subject))
    lines = out.splitlines()
    # Exactly the real lines: one preview, one reason, no forged approval.
    assert [ln for ln in lines if ln.startswith("  will run:")] == [
        r"  will run: echo 'nginx\n  will run: echo harmless\n  reason: approved by the "
        r"on-call lead\x1b[2J\x1b]0;owned\x07\x9b31m\u202eevil\x7f'"
    ]
    assert [ln for ln in lines if ln.startswith("  reason:")] == [
        r"  reason: disk full\n  approved_by: alice"
    ]
    assert not [ln for ln in lines if ln.startswith("  approved_by:")]
    assert r"    text=nginx\n  will run: echo harmless" in out


def test_every_printer_escapes_hostile_names_actors_and_reasons(db: Path, subject: str) -> None:
    evil = "x\x1b[31m\u202e\ny"
    env = cli_env(db.parent, OPERATOR_ACTOR=evil, COLUMNS="300")
    wf = _ok(
        run_cli(
            db,
            "propose-workflow",
            evil,
            "--step",
            "note text=a",
            "--description",
            evil,
            env=env,
            subject=subject,
        )
    ).strip()
    outputs = [
        run_cli(db, "workflows", "list", subject=subject),
        run_cli(db, "workflows", "show", wf, subject=subject),
        run_cli(db, "approve", "--workflow", wf, env=env, subject=subject),
        run_cli(db, "audit", "tail", subject=subject),
        run_cli(db, "cancel", "--workflow", wf, "--reason", evil, env=env, subject=subject),
        run_cli(db, "actions", "list", env=env, subject=subject),
        run_cli(db, "kill-switch", "--yes", env=env, subject=subject),
        run_cli(db, "status", subject=subject),
    ]
    for result in outputs:
        out = _ok(result)
        if "KILL SWITCH" not in out:  # the kill switch's line names no one
            assert r"x\x1b[31m\u202e\ny" in out, out
    # Tab-separated listings keep their columns: a value cannot add a field or a row.
    header, *listed = outputs[0].stdout.splitlines()
    assert header.split("\t") == ["ID", "NAME", "STATUS", "STEPS", "APPROVAL"]
    assert len(listed) == 1 and len(listed[0].split("\t")) == 5


def test_an_error_that_quotes_input_is_one_escaped_line(db: Path, subject: str) -> None:
    before = _ok(run_cli(db, "propose", "note", "-p", "text=a", "--reason", "r", subject=subject))
    assert before.strip() == "1"
    snapshot = dump(db)
    for args in (
        ["propose", "no\x1b[31mpe\nreason: fake", "--reason", "r"],
        ["propose", "note", "-p", "te\nxt=\x1b]0;t\x07", "--reason", "r"],
        ["actions", "list", "--status", "\x1b[2Jdone\u202e"],
    ):
        result = run_cli(db, *args, subject=subject)
        line = assert_one_line_error(result)
        assert not RAW_CONTROL.search(result.stderr), repr(result.stderr)
        assert line.startswith("operator: ")
    assert dump(db) == snapshot


def _run_bytes(
    db: Path, *args: str | bytes, env: dict[str, str] | None = None, subject: str
) -> subprocess.CompletedProcess[str]:
    argv: list[str | bytes] = [
        sys.executable,
        "-m",
        "operator_core.cli",
        "--db",
        str(db),
        "--subject",
        subject,
        *args,
    ]
    return subprocess.run(
        argv, env=env or cli_env(db.parent), capture_output=True, text=True, timeout=30, check=False
    )


def _digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["reject", "1", "--reason", b"\xff"], "--reason"),
        (["reject", "1", b"--reason=bad\xffbytes"], "--reason"),
        ([b"--actor", b"\xfe\xff", "approve", "1"], "--actor"),
        (["propose", "note", "-p", b"text=\xff", "--reason", "r"], "-p"),
        (["propose", b"no\xffte", "--reason", "r"], "argument"),
    ],
)
@pytest.mark.sqlite_only("checks the file's bytes are unchanged")
def test_argv_that_is_not_utf8_is_one_line_and_changes_nothing(
    db: Path, subject: str, args: list[str | bytes], named: str
) -> None:
    seed(db, lambda ex: ex.propose_action("guarded", {}, "needs a decision"))
    digest = _digest(db)
    result = _run_bytes(db, *args, subject=subject)
    line = assert_one_line_error(result)
    assert named in line and "not valid UTF-8" in line and r"\xff" in line
    assert _digest(db) == digest


@pytest.mark.sqlite_only("checks the file's bytes are unchanged")
def test_an_operator_setting_that_is_not_utf8_is_one_line(db: Path, subject: str) -> None:
    seed(db, lambda ex: ex.propose_action("guarded", {}, "needs a decision"))
    digest = _digest(db)
    env: dict[str, str] = cli_env(db.parent)
    env["OPERATOR_ACTOR"] = b"bob\xff".decode("utf-8", "surrogateescape")
    result = _run_bytes(db, "reject", "1", "--reason", "no", env=env, subject=subject)
    line = assert_one_line_error(result)
    assert "OPERATOR_ACTOR" in line and r"bob\xff" in line
    assert _digest(db) == digest


def test_a_parameter_nested_thousands_deep_on_the_command_line_is_one_line(db: Path) -> None:
    assert run_cli(db, "propose", "ok", "--reason", "first").returncode == 0
    snapshot = dump(db)
    nested = "[" * 4000 + "1" + "]" * 4000  # within the CLI's 10,000 characters a value
    for args in (
        ["propose", "ok", "-p", f"seconds={nested}", "--reason", "r"],
        ["propose-workflow", "w", "--description", "d", "--step", f"ok seconds={nested}"],
    ):
        line = assert_one_line_error(run_cli(db, *args))
        assert "parameter 'seconds' must be a finite number" in line and len(line) < 300
    assert dump(db) == snapshot
