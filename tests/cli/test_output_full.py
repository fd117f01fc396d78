"""An output that cannot be written (a full disk, ``> /dev/full``) is one line on stderr and
exit code 1 on every path: the fast reads, the kept help, and Typer's commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(
    argv: list[str], env: dict[str, str], stdout: int | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "operator_core.cli", *argv],
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPERATOR_")}
    env["PYTHONPATH"] = os.pathsep.join(str(REPO / d) for d in ("core", "tui", "."))
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["OPERATOR_DB"] = str(tmp_path / "operator.db")
    return env


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize(
    "argv",
    [
        ["status"],  # the fast path
        ["actions", "show", "1", "--json"],
        ["audit", "tail"],
        ["--version"],
        ["--help"],  # the kept text (kept below)
        ["actions", "--help"],  # Typer's help
        ["actions", "list"],  # Typer (Rich) on a file that is not a pipe
        ["propose", "check_health", "--reason", "full"],  # written, not printed
    ],
)
def test_a_full_output_is_one_line_and_exit_1(env: dict[str, str], argv: list[str]) -> None:
    assert (
        _run(["propose", "check_health", "--reason", "r"], env, subprocess.DEVNULL).returncode == 0
    )
    assert _run(["--help"], env, subprocess.DEVNULL).returncode == 0
    with open("/dev/full", "w") as full:
        done = _run(argv, env, full.fileno())
    assert done.returncode == 1, done.stderr
    assert done.stderr == "operator: cannot write the output: No space left on device\n"
