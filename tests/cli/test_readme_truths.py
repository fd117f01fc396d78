"""The README says what the tool does (issue 23, item 13): every command line it shows
parses, and the facts it states (the demo's database, the `--status` values, the keys, the
exit codes, the CLI's limits) come from the code they describe."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
from operator_core.cli import main, parsing
from operator_core.cli.running import EXIT_FAILED
from operator_core.model.states import ActionStatus

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def _command_lines() -> list[list[str]]:
    block = _section("Command line").split("```sh\n", 1)[1].split("```", 1)[0]
    lines = []
    for raw in block.replace("\\\n", " ").splitlines():
        text = raw.split("#", 1)[0].strip()
        if text.startswith("operator "):
            lines.append(shlex.split(text)[1:])
    return lines


def _words(args: list[str]) -> list[str]:
    """The command's words: global options and their values left out, up to the first
    option or value of the command itself."""
    words, i = [], 0
    while i < len(args):
        if args[i] in ("--db", "--subject", "--approval-mode", "--actor"):
            i += 2
            continue
        if args[i].startswith(("-", "[")) or not re.fullmatch(r"[a-z][a-z-]*", args[i]):
            break
        words.append(args[i])
        i += 1
    return words


COMMANDS = _command_lines()


def test_the_readme_shows_many_command_lines() -> None:
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(_words(a)))
def test_every_command_line_in_the_readme_is_a_command(args: list[str]) -> None:
    words = _words(args)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*words, "--help"])
    assert code == 0, (words, err.getvalue())
    assert f"Usage: operator {words[0]}" in out.getvalue()


def test_the_status_values_are_the_real_ones() -> None:
    sentence = _section("Command line").split("`--status` is one of", 1)[1].split(".", 1)[0]
    assert re.findall(r"`(\w+)`", sentence) == [s.value for s in ActionStatus]


def test_the_demo_database_its_reset_and_attaching_to_it() -> None:
    text = _section("Two commands")
    assert "`~/.local/state/operator/demo.db`" in text
    assert "every `./run demo` resets it" in text
    assert "./run operator --db ~/.local/state/operator/demo.db tui" in text
    assert "./run operator --db ~/.local/state/operator/demo.db actions list" in text
    assert "`./run operator` until the venv is on your `PATH`" in text
    assert "Nothing runs without a runner." in _section("Command line")


def test_the_key_table_lists_the_panes_keys() -> None:
    from textual.widgets import DataTable

    table = _section("The dashboard")
    for key in ("↑", "↓", "PgUp", "PgDn", "ctrl+Home", "ctrl+End", "←", "→", "Home", "End"):
        assert f"`{key}`" in table, key
    assert "`escape` (or backspace) goes back" in table
    named = {"up": "↑", "down": "↓", "left": "←", "right": "→", "pageup": "PgUp"}
    named |= {"pagedown": "PgDn", "home": "Home", "end": "End", "enter": "enter"}
    named |= {"ctrl+home": "ctrl+Home", "ctrl+end": "ctrl+End"}
    for binding in DataTable.BINDINGS:
        key = binding.key if hasattr(binding, "key") else binding[0]  # type: ignore[index]
        assert f"`{named[key]}`" in table, key


def test_exit_codes_and_limits_are_the_codes() -> None:
    text = _section("Command line")
    assert f"{EXIT_FAILED}: `run --until-idle` ran, and an action" in text
    assert f"1 to {parsing.MAX_NAME_CHARS} characters" in text
    assert f"at most {parsing.MAX_TEXT_CHARS:,} characters" in text
    assert f"from 1 to\n{parsing.MAX_LIST:,}" in text or f"from 1 to {parsing.MAX_LIST:,}" in text
    assert f"{parsing.MAX_ID:,}" in text


def test_the_performance_section_is_a_short_table() -> None:
    text = _section("Performance")
    assert len(text.splitlines()) < 45
    assert "docs/performance.md" in text
    moved = (REPO / "docs" / "performance.md").read_text()
    assert "## The last full run, as the README summarises it" in moved
    assert "Huey's\nenqueue is one row" in moved or "Huey's enqueue is one row" in moved
