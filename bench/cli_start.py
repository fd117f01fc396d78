"""``python -m bench cli``: how long the ``operator`` command takes to start and answer,
beside a bare interpreter's start (``python -c pass``) measured in the same rounds.

Agents and scripts call the CLI once per proposal or question, so its start is what they
feel. Each round runs the interpreter, then every command, each a fresh process on one
small database; a figure is the median over the rounds, and the ratio ours/interpreter is
computed per round (the target: every reading command within 2x a bare interpreter).
``./run operator`` is measured too: the wrapper people use before the venv is on PATH.
Its first call compiles the tree's bytecode (as an installed wheel has it), so the figures
are those of a checkout that has been run once, also where PYTHONDONTWRITEBYTECODE is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import REPO, Figure

BENCH = "CLI start (one process per call)"
COLD_HELP = "operator --help (first call)"
VENV_OPERATOR = Path(sys.executable).with_name("operator")


def _commands(db: Path) -> list[tuple[str, list[str], bool]]:
    """(name, argv, judged against the 2x target): every reading command, then a write and
    the ``./run`` wrapper for comparison. The fast path (cli/fast.py) serves every read
    below; ``actions show`` there reads the subject facts the set-up's ``propose`` kept
    (cli/subject_facts.py). ``--help`` prints the text Typer printed for it before
    (cli/help_cache.py); its first call, which starts Typer (the cache is emptied before
    each), and the write are shown for scale."""
    op = (
        [str(VENV_OPERATOR)]
        if VENV_OPERATOR.exists()
        else [sys.executable, "-m", "operator_core.cli"]
    )
    with_db = [*op, "--db", str(db)]
    reads = [
        ["status"],
        ["status", "--json"],
        ["actions", "list"],
        ["actions", "list", "--json"],
        ["actions", "show", "1"],
        ["actions", "show", "1", "--json"],
        ["workflows", "list"],
        ["workflows", "show", "1"],
        ["audit", "tail"],
        ["automations", "list"],
        ["automations", "executions"],
        ["automations", "executions", "--json"],
    ]
    return [
        ("operator --help", [*op, "--help"], True),
        (COLD_HELP, [*op, "--help"], False),
        ("operator --version", [*op, "--version"], True),
        *((f"operator {' '.join(args)}", [*with_db, *args], True) for args in reads),
        (
            "operator propose (writes)",
            [*with_db, "propose", "check_health", "--reason", "b"],
            False,
        ),
        (
            "./run operator status",
            [str(REPO / "run"), "operator", "--db", str(db), "status"],
            False,
        ),
    ]


SETUP = [
    ["propose", "check_health", "--reason", "b"],
    ["propose-workflow", "wf", "--step", "check_health", "--description", "d"],
]
"""Rows for every command to show (action 1, workflow 1)."""


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return took


def bench(runs: int, quick: bool, log: Callable[[str], None] = print) -> list[Figure]:
    rounds = 3 if quick else max(11, 3 * runs)
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPERATOR_")}
        env["XDG_STATE_HOME"] = str(Path(tmp) / "state")
        env["XDG_CACHE_HOME"] = cache = str(Path(tmp) / "cache")
        db = Path(tmp) / "operator.db"
        commands = _commands(db)
        op_db = commands[-2][1][: commands[-2][1].index("propose")]
        _time(commands[0][1], env)  # keeps the help text
        for args in SETUP:  # the database and the rows the reads show
            _time([*op_db, *args], env)
        _time(commands[-1][1], env)  # ./run's first call syncs the venv and compiles the tree
        interpreter = [sys.executable, "-c", "pass"]
        figures = [
            Figure(
                BENCH,
                name,
                "ms",
                peer=[],
                peer_label="python -c pass",
                target="≤ 2x interpreter" if judged else "",
                meets=(lambda r: r <= 2.0) if judged else None,
                judge_ratio=True,
            )
            for name, _, judged in commands
        ]
        for i in range(rounds):
            for figure, (name, argv, _) in zip(figures, commands, strict=True):
                assert figure.peer is not None
                if name == COLD_HELP:
                    shutil.rmtree(Path(cache) / "operator" / "help", ignore_errors=True)
                figure.peer.append(_time(interpreter, env) * 1000)
                figure.ours.append(_time(argv, env) * 1000)
            log(f"   round {i + 1}/{rounds}")
    return figures


if __name__ == "__main__":
    from bench.common import summary

    for f in bench(1, "--quick" in sys.argv):
        print(
            f"{f.name:32} {summary(f.ours)} ms   {f.peer_label} {summary(f.peer or [])} ms   "
            f"ratio {summary(f.ratios)}  {f.verdict()}"
        )
