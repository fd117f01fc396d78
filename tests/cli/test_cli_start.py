"""The CLI starts with only what a command needs (issue 23, item 11): help and a usage error
load no models, no cryptography and no event loop; ``status`` reads without the executor
and pydantic; ``./run operator`` is quiet after its first call. Times are in
``python -m bench cli``, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("pydantic", "cryptography", "rich", "textual", "operator_core.actions.executor")

PROBE = """
import sys
from operator_core.cli import main
code = main(sys.argv[1:])
heavy = sorted({m for m in sys.modules for h in HEAVY if m == h or m.startswith(h + ".")})
asyncio = "asyncio" in sys.modules
import json  # only now: what the command loaded is counted above
print(json.dumps({"code": code, "loaded": heavy, "asyncio": asyncio}), file=sys.stderr)
"""


def _loaded(tmp_path: Path, *args: str, heavy: tuple[str, ...] = HEAVY) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPERATOR_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    # The tree under test, whatever the venv's editable install points at.
    env["PYTHONPATH"] = os.pathsep.join(str(REPO / d) for d in ("core", "tui", "."))
    code = f"HEAVY = {heavy!r}\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["approve"], ["audit"], ["actions", "--help"]]
)
def test_help_and_usage_errors_load_nothing_heavy(tmp_path: Path, args: list[str]) -> None:
    seen = _loaded(tmp_path, *args)
    assert seen["loaded"] == [], seen
    assert seen["asyncio"] is False, seen


def test_status_reads_without_the_executor_or_pydantic(tmp_path: Path) -> None:
    db = tmp_path / "operator.db"
    made = _loaded(tmp_path, "--db", str(db), "propose", "check_health", "--reason", "r")
    assert made["code"] == 0
    for args in (["status"], ["status", "--json"]):
        seen = _loaded(tmp_path, "--db", str(db), *args)
        assert seen["code"] == 0 and seen["loaded"] == [], seen


# What the fast path (cli/fast.py) keeps out of a reading command's start, beyond HEAVY:
# typing, json (with re) and the sqlite3 package cost a large part of a bare interpreter's
# start each (docs/performance.md), and contextlib, datetime's Python half and reprlib a bit.
NOT_READING = (
    *HEAVY,
    "typer",
    "aiosqlite",
    "dataclasses",
    "pathlib",
    "socket",
    "uuid",
    "typing",
    "json",
    "re",
    "sqlite3",
    "contextlib",
    "datetime",
    "inspect",
)
# ``--version`` reads one file: nothing beyond the interpreter's own start but our modules.
NOT_VERSION = (*NOT_READING, "_sqlite3", "enum", "functools", "collections")


def test_reading_commands_start_without_typer(tmp_path: Path) -> None:
    db = tmp_path / "operator.db"
    for args in (
        ["propose", "check_health", "--reason", "r"],
        ["propose-workflow", "wf", "--step", "check_health", "--description", "d"],
    ):
        assert _loaded(tmp_path, "--db", str(db), *args)["code"] == 0
    for args in (
        ["status"],
        ["status", "--json"],
        ["actions", "list", "--json"],
        ["actions", "list", "--status", "validated"],
        ["workflows", "list"],
        ["workflows", "show", "1", "--json"],
        ["audit", "tail", "-n", "5"],
        ["audit", "tail", "--json"],
    ):
        seen = _loaded(tmp_path, "--db", str(db), *args, heavy=NOT_READING)
        assert seen["code"] == 0 and seen["loaded"] == [], (args, seen)
        assert seen["asyncio"] is False, (args, seen)
    seen = _loaded(tmp_path, "--version", heavy=NOT_VERSION)
    assert seen["code"] == 0 and seen["loaded"] == [], seen


def test_the_probe_sees_what_a_reading_command_would_not_load(tmp_path: Path) -> None:
    """The lists above can fail: a command that needs them (Typer's help) loads them."""
    seen = _loaded(tmp_path, "--help", heavy=("typing", "re", "json"))
    assert {"typing", "re"} <= set(seen["loaded"]), seen  # type: ignore[arg-type]


def test_automation_lists_and_actions_show_start_without_typer(tmp_path: Path) -> None:
    """The automations' lists read their rows without the engine (``db.automation_rows``)
    and, as the other reads, without dataclasses, typing or json; so does ``actions show``
    where the facts of its subject were kept."""
    db = tmp_path / "operator.db"
    definition = str(tmp_path / "restart.json")
    for args in (
        ["propose", "check_health", "--reason", "r"],
        ["automations", "new", "restart", "--from-template", "restart-if-still-open"],
        ["automations", "apply", definition, "--note", "n"],
        ["automations", "enable", "restart"],
        ["ticket", "open", "disk full", "--meta", "store_id=1"],
        ["automations", "run", "restart", "--ticket", "1"],
    ):
        extra = ["--output", definition] if args[1] == "new" else []
        assert _loaded(tmp_path, "--db", str(db), *args, *extra)["code"] == 0, args
    for args in (
        ["automations", "list"],
        ["automations", "executions"],
        ["automations", "executions", "--json"],
    ):
        seen = _loaded(tmp_path, "--db", str(db), *args, heavy=NOT_READING)
        assert seen["code"] == 0 and seen["loaded"] == [], (args, seen)
        assert seen["asyncio"] is False, (args, seen)
    # An execution was read (what would import dataclasses, were they still used).
    seen = _loaded(
        tmp_path,
        "--db",
        str(db),
        "automations",
        "executions",
        heavy=("operator_core.model.execution_state",),
    )
    assert seen["loaded"] == ["operator_core.model.execution_state"], seen
    # ``actions show`` reads what the subject says from the facts ``propose`` kept
    # (cli/subject_facts.py), as light as the other reads; without them it loads the
    # subject (pydantic), but still neither Typer, aiosqlite, Rich nor the executor.
    shows = (["actions", "show", "1"], ["actions", "show", "1", "--json"])
    for args in shows:
        seen = _loaded(tmp_path, "--db", str(db), *args, heavy=NOT_READING)
        assert seen["code"] == 0 and seen["loaded"] == [], (args, seen)
        assert seen["asyncio"] is False, (args, seen)
    Path(f"{db}.subjects").unlink()
    show = ("typer", "aiosqlite", "rich", "textual", "operator_core.actions.executor")
    seen = _loaded(tmp_path, "--db", str(db), *shows[0], heavy=(*show, "pydantic"))
    assert seen["code"] == 0 and "pydantic" in seen["loaded"], seen  # type: ignore[operator]
    assert not [m for m in seen["loaded"] if m.partition(".")[0] != "pydantic"], seen  # type: ignore[attr-defined]
    # That show kept them again.
    seen = _loaded(tmp_path, "--db", str(db), *shows[1], heavy=NOT_READING)
    assert seen["code"] == 0 and seen["loaded"] == [], seen


def test_run_wrapper_is_quiet_after_its_first_call() -> None:
    first = subprocess.run(
        [str(REPO / "run"), "operator", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr
    again = subprocess.run(
        [str(REPO / "run"), "operator", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert again.returncode == 0 and again.stdout.startswith("operator ")
    assert again.stderr == "", again.stderr


def test_the_typer_path_runs_with_the_collector(tmp_path: Path) -> None:
    """The process's own command turns the cyclic collector off while the fast path looks at
    it; a command the fast path declines (every one that acts, a runner for days among
    them) runs with it on again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPERATOR_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["PYTHONPATH"] = os.pathsep.join(str(REPO / d) for d in ("core", "tui", "."))
    code = (
        "import gc, sys\n"
        "import operator_core.cli.typer_main as t\n"
        "t.main = lambda argv: print(gc.isenabled()) or 0\n"
        "from operator_core.cli import main\n"
        "sys.exit(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "--db", str(tmp_path / "x.db"), "propose", "check_health"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "True\n"), done.stderr
