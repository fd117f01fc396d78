"""A runner on PostgreSQL outlives a server restart: it reports the outage in one line,
connects again, and runs what was proposed after the restart exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.conftest import cli_env, wait_for
from tests.pg import PgServer

ENV = {"OPERATOR_DEMO_SPEED": "1000", "OPERATOR_DEMO_FAILURE_RATE": "0"}


def _cli(tmp_path: Path, url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", url, "--subject", "demo", *args],
        env=cli_env(tmp_path, **ENV),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _rows(url: str, sql: str, params: Any = ()) -> list[Any]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_runner_outlives_a_server_restart(
    tmp_path: Path, pg_server: PgServer, pg_url: str
) -> None:
    if pg_server.cluster is None:
        pytest.skip("PG_TEST_URL names an external server: this test restarts its own")
    first = int(_cli(tmp_path, pg_url, "propose", "check_health", "--reason", "before"))
    log = tmp_path / "runner.log"
    with log.open("wb") as err:
        runner = subprocess.Popen(
            [sys.executable, "-m", "operator_core.cli", "--db", pg_url, "--subject", "demo"]
            + ["run", "--lease-seconds", "5"],
            env=cli_env(tmp_path, **ENV),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        done = "SELECT status FROM action_proposals WHERE id = %s"
        wait_for(lambda: _rows(pg_url, done, (first,)) == [("completed",)], 30, 0.1, "first")
        pg_server.cluster.restart()
        second = int(_cli(tmp_path, pg_url, "propose", "check_health", "--reason", "after"))
        wait_for(lambda: _rows(pg_url, done, (second,)) == [("completed",)], 30, 0.1, "second")
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=30)
    assert runner.returncode == 0
    text = log.read_text()
    assert "usable again" in text  # it saw the outage and came back
    assert pg_server.cluster.password not in text
    # Each action ran once: one attempt each, and the chain holds one start and one end each.
    attempts = _rows(pg_url, "SELECT proposal_id, count(*) FROM action_records GROUP BY 1")
    assert sorted(attempts) == [(first, 1), (second, 1)]
    events = _rows(
        pg_url,
        "SELECT proposal_id, event_type FROM action_audit_log "
        "WHERE event_type IN ('execution_started', 'completed') ORDER BY id",
    )
    assert sorted(events) == sorted(
        [(pid, kind) for pid in (first, second) for kind in ("execution_started", "completed")]
    )
