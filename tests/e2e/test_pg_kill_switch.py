"""``operator kill-switch`` and ``resume`` on PostgreSQL: the safety_state row is the switch,
so a pull from any host stops a runner on another: what it runs is stopped and recorded
cancelled, nothing new is claimed or proposed until ``resume``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.e2e.conftest import SUBJECT, cli_env, run_cli, wait_for

SLOW = 4


def _cli(env: dict[str, str], url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", url, "--subject", SUBJECT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _propose(env: dict[str, str], url: str, action: str, *params: str) -> int:
    args = [x for p in params for x in ("-p", p)]
    done = _cli(env, url, "propose", action, *args, "--reason", "test")
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def _rows(url: str, sql: str, params: Any = ()) -> list[Any]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _statuses(url: str) -> dict[int, str]:
    return dict(_rows(url, "SELECT id, status FROM action_proposals ORDER BY id"))


def test_a_pull_on_one_host_stops_a_runner_on_another(tmp_path: Path, pg_url: str) -> None:
    env = cli_env(tmp_path)
    log = tmp_path / "runner.log"
    with log.open("wb") as err:
        runner = subprocess.Popen(
            [sys.executable, "-m", "operator_core.cli", "--db", pg_url, "--subject", SUBJECT]
            + ["run", "--concurrency", str(SLOW)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        slow = [_propose(env, pg_url, "slow", "seconds=120") for _ in range(SLOW)]
        queued = _propose(env, pg_url, "ok")  # waits: every slot holds a slow one
        executing = "SELECT count(*) FROM action_proposals WHERE status = 'executing'"
        wait_for(lambda: _rows(pg_url, executing) == [(SLOW,)], 30, 0.1, "slow ones running")
        pulled = time.monotonic()
        done = _cli(env, pg_url, "kill-switch", "--yes")
        assert done.returncode == 0, done.stderr
        first, second = done.stdout.splitlines()
        assert first.startswith("KILL SWITCH engaged at ") and "every host's runners" in first
        assert second.startswith("database: safety mode OBSERVE; cancelled 1 action(s)")
        assert second.endswith(f"{SLOW} running action(s) told to stop")
        wait_for(lambda: set(_statuses(pg_url).values()) == {"cancelled"}, 30, 0.05, "all stopped")
        stopped_in = time.monotonic() - pulled
        refused = _cli(env, pg_url, "propose", "ok", "--reason", "during")
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1
        assert "OBSERVE" in refused.stderr or "observe" in refused.stderr
        resumed = _cli(env, pg_url, "resume", "--yes")
        assert (resumed.returncode, resumed.stdout) == (0, "safety mode EXECUTE\n")
        after = _propose(env, pg_url, "ok")
        wait_for(lambda: _statuses(pg_url)[after] == "completed", 30, 0.05, "after resume")
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=60)
    assert runner.returncode == 0, log.read_text()
    statuses = _statuses(pg_url)
    assert [statuses[i] for i in [*slow, queued]] == ["cancelled"] * (SLOW + 1)
    # The slow ones were attempted once and stopped; the queued one never started.
    attempts = dict(
        _rows(pg_url, "SELECT proposal_id, count(*) FROM action_records GROUP BY proposal_id")
    )
    assert attempts == {**{i: 1 for i in slow}, after: 1}
    # A runner reads the row every poll interval (0.5 s); the rest is recording the stops
    # and this test's own polling of a loaded machine.
    assert stopped_in < 10, stopped_in
    verify = run_cli(
        pg_url, "audit", "verify", env=cli_env(tmp_path / "verifier"), subject=None, timeout=60
    )
    assert verify.returncode == 0, verify.stderr
