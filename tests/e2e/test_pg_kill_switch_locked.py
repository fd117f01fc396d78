"""The kill switch on PostgreSQL while another connection holds the write lock: as SQLite's
kill file does (test_kill_switch_locked.py), the pull sets the safety_state row at once
without the lock, a real runner on another "host" stops the command it runs within its poll
interval, nothing new starts, and the first writer once the lock frees records it all."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from operator_core.db.killfile import PENDING_REASON
from operator_core.db.pg.txn import WRITE_LOCK

from tests.e2e.conftest import cli_env, wait_for
from tests.e2e.test_kill_switch_locked import RUNBOOK
from tests.subjects.helpers import is_alive


def _argv(url: str, spec: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "operator_core.cli", "--db", url, "--subject", spec, *args]


def _cli(env: dict[str, str], url: str, spec: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(url, spec, *args), env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _rows(url: str, sql: str, params: Any = ()) -> list[Any]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _status(url: str, pid: int) -> str:
    return str(_rows(url, "SELECT status FROM action_proposals WHERE id = %s", (pid,))[0][0])


def test_a_pull_stops_a_runner_while_another_connection_holds_the_write_lock(
    tmp_path: Path, pg_url: str
) -> None:
    runbook = tmp_path / "runbook.toml"
    runbook.write_text(RUNBOOK)
    spec = f"commands:{runbook}"
    env = cli_env(tmp_path)
    impatient = cli_env(tmp_path, OPERATOR_BUSY_TIMEOUT="0.3")
    running, queued = tmp_path / "running.pid", tmp_path / "queued.pid"
    ids = []
    for pidfile in (running, queued):
        done = _cli(
            env, pg_url, spec, "propose", "hold", "-p", f"pidfile={pidfile}", "--reason", "x"
        )
        assert done.returncode == 0, done.stderr
        ids.append(int(done.stdout))
    first, second = ids
    with (tmp_path / "runner.log").open("wb") as err:
        # It waits out the held lock rather than give up after the default 5 s.
        runner = subprocess.Popen(
            _argv(pg_url, spec, "run", "--concurrency", "1"),
            env=cli_env(tmp_path, OPERATOR_BUSY_TIMEOUT="60"),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    holder = psycopg.connect(pg_url, autocommit=True)
    try:
        wait_for(running.exists, 30, what="the command to start")
        child = int(running.read_text())
        assert is_alive(child)
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        try:
            done = _cli(impatient, pg_url, spec, "kill-switch", "--yes")
            assert done.returncode == 0, done.stderr
            lines = done.stdout.splitlines()
            assert lines[0].startswith("KILL SWITCH engaged at "), done.stdout
            assert lines[1].startswith("database busy (") and "locked" in lines[1]
            wait_for(lambda: not is_alive(child), 10, 0.01, "the runner to stop the command")

            # Still locked: the row says OBSERVE, not yet recorded; nothing new starts.
            mode = _rows(pg_url, "SELECT mode, reason FROM safety_state")[0]
            assert tuple(mode) == ("observe", PENDING_REASON)
            status = _cli(impatient, pg_url, spec, "status", "--json")
            assert json.loads(status.stdout)["safety_mode"] == "observe", status.stderr
            refused = _cli(impatient, pg_url, spec, "resume", "--yes")
            assert refused.returncode == 1 and "locked" in refused.stderr, refused.stderr
            events = "SELECT count(*) FROM action_audit_log WHERE event_type = 'kill_switch'"
            assert _rows(pg_url, events) == [(0,)]
            time.sleep(1.0)  # two poll intervals: time enough to have started the second
            assert not queued.exists()
        finally:
            holder.execute("ROLLBACK")

        # The lock is free: the runner records the pull and the cancellations.
        wait_for(lambda: _status(pg_url, first) == "cancelled", 30, what="the attempt recorded")
        kills = "SELECT event_data, actor FROM action_audit_log WHERE event_type = 'kill_switch'"
        # The stopped attempt may be recorded in a cycle before the one that records the pull.
        wait_for(lambda: _rows(pg_url, kills), 30, what="the pull recorded")
        (data, actor), *more = _rows(pg_url, kills)
        assert more == []  # recorded once, by the runner
        event = json.loads(data)
        assert actor.endswith("(tester@e2e)") and "recorded_by" in event
        assert second in event["cancelled_actions"]
        assert _status(pg_url, second) == "cancelled" and not queued.exists()
        mode = _rows(pg_url, "SELECT mode, reason FROM safety_state")[0]
        assert tuple(mode) == ("observe", "kill switch")

        resumed = _cli(env, pg_url, spec, "resume", "--yes")
        assert (resumed.returncode, resumed.stdout) == (0, "safety mode EXECUTE\n")
        verify = _cli(env, pg_url, spec, "audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        holder.close()
        runner.terminate()
        runner.wait(30)
    log = (tmp_path / "runner.log").read_text()
    assert "Traceback" not in log, log
