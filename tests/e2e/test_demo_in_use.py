"""A second ``operator demo`` must not delete the database under a running one: the demo
resets its file only when no other Operator process has it open (a shared flock on
``<db>.lock`` held by every open ActionDB), and otherwise says why in one line."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    assert_one_line_error,
    cli_argv,
    cli_env,
    query,
    run_cli,
    start_runner,
    wait_for,
)

# What never changes about a proposal while the demo runs it.
pytestmark = pytest.mark.sqlite_only("the demo's file and its flock")

FIRST = "SELECT id, action_name, parameters, reason, proposed_at FROM action_proposals LIMIT 1"


def _proposals(db: Path) -> int:
    try:
        return len(query(db, "SELECT id FROM action_proposals"))
    except sqlite3.Error:  # not made yet
        return 0


def _start_demo(tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> Path:
    """A headless demo on its default file, left running; returns that file once the demo's
    agent has proposed something."""
    argv = cli_argv(
        tmp_path / "unused.db",
        "demo",
        "--headless",
        "--duration",
        "120",
        "--speed",
        "5",
        subject=None,
    )
    argv.remove("--db")
    argv.remove(str(tmp_path / "unused.db"))
    with (tmp_path / "demo.log").open("wb") as log:
        proc = subprocess.Popen(argv, env=cli_env(tmp_path), stdout=log, stderr=log)
    procs.append(proc)
    demo_db = tmp_path / "state" / "operator" / "demo.db"
    wait_for(
        lambda: demo_db.exists() and _proposals(demo_db),
        timeout=60,
        what="the first demo's first proposal",
    )
    return demo_db


def _second_demo(
    tmp_path: Path, db: Path | None = None, *extra: str
) -> subprocess.CompletedProcess[str]:
    argv = cli_argv(db or tmp_path, "demo", "--headless", "--duration", "0.5", *extra, subject=None)
    if db is None:
        argv[3:5] = []  # no --db: the demo's own default file, which it resets
    return subprocess.run(
        argv, env=cli_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )


def test_a_second_demo_refuses_to_reset_the_running_ones_database(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    demo_db = _start_demo(tmp_path, procs)
    inode = demo_db.stat().st_ino
    first = tuple(query(demo_db, FIRST)[0])

    line = assert_one_line_error(_second_demo(tmp_path))
    assert str(demo_db) in line and "open in another Operator process" in line

    assert procs[0].poll() is None  # the first demo runs on
    assert demo_db.stat().st_ino == inode  # same file, not deleted and made again
    assert tuple(query(demo_db, FIRST)[0]) == first  # the same first proposal
    count = _proposals(demo_db)
    wait_for(
        lambda: _proposals(demo_db) > count,
        timeout=60,
        what="the first demo to go on proposing into its database",
    )

    os.kill(procs[0].pid, signal.SIGKILL)  # even a killed demo leaves no stale lock
    procs[0].wait(timeout=10)
    again = _second_demo(tmp_path)
    assert again.returncode == 0, again.stderr
    assert tuple(query(demo_db, FIRST)[0]) != first  # now it was free: a fresh database


def test_demo_reset_refuses_a_database_a_runner_has_open(
    db: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    assert run_cli(db, "propose", "ok", "--reason", "keep me").returncode == 0
    procs.append(start_runner(db, db.parent / "runner.log"))
    wait_for(
        lambda: query(db, "SELECT id FROM action_proposals WHERE status = 'completed'"),
        timeout=60,
        what="the runner to run the action",
    )
    line = assert_one_line_error(_second_demo(db.parent, db, "--reset"))
    assert "open in another Operator process" in line
    assert query(db, "SELECT reason FROM action_proposals")[0][0] == "keep me"
