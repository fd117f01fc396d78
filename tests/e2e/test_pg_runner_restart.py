"""A runner on PostgreSQL outlives a server restart: it reports the outage in one line,
connects again, and runs what was proposed after the restart exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db import audit
from operator_core.db.pg.store import PgActionDB
from operator_core.db.url import NOWHERE

from tests.e2e.conftest import SUBJECT, cli_env, wait_for
from tests.pg import PgServer
from tests.support.subjects import TestSubject

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


BUSY_ACTIONS = 200


def test_runners_working_through_a_server_restart_end_each_action_once(
    tmp_path: Path, pg_server: PgServer, pg_url: str
) -> None:
    """Two runners busy with 200 actions when the server restarts: every action ends once
    (one successful attempt, one `completed` event) and the audit chain verifies."""
    if pg_server.cluster is None:
        pytest.skip("PG_TEST_URL names an external server: this test restarts its own")
    asyncio.run(_propose_busy(pg_url))
    logs = [tmp_path / f"runner-{i}.log" for i in range(2)]
    runners = []
    for log in logs:
        with log.open("wb") as err:
            runners.append(
                subprocess.Popen(
                    [sys.executable, "-m", "operator_core.cli", "--db", pg_url]
                    + ["--subject", SUBJECT, "run", "--concurrency", "4", "--lease-seconds", "3"],
                    env=cli_env(tmp_path),
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
    completed = "SELECT count(*) FROM action_proposals WHERE status = 'completed'"
    try:
        wait_for(lambda: _rows(pg_url, completed)[0][0] >= 40, 60, 0.05, "40 actions done")
        pg_server.cluster.restart()
        at_restart = _rows(pg_url, completed)[0][0]
        assert at_restart < BUSY_ACTIONS  # the restart came mid-run
        wait_for(lambda: _rows(pg_url, completed)[0][0] == BUSY_ACTIONS, 120, 0.2, "every action")
    finally:
        for runner in runners:
            runner.send_signal(signal.SIGTERM)
        for runner in runners:
            runner.wait(timeout=30)
    assert [r.returncode for r in runners] == [0, 0], [log.read_text() for log in logs]
    assert any("usable again" in log.read_text() for log in logs)
    # One successful attempt each, no attempt left open; an attempt cut off by the restart
    # is closed as failed (the lease rules: retried, never run beside another).
    per_action = _rows(
        pg_url,
        "SELECT proposal_id, SUM(success), COUNT(*) FILTER (WHERE completed_at IS NULL) "
        "FROM action_records GROUP BY proposal_id",
    )
    assert len(per_action) == BUSY_ACTIONS
    assert {(ok, still_open) for _, ok, still_open in per_action} == {(1, 0)}
    ends = _rows(
        pg_url,
        "SELECT proposal_id, count(*) FROM action_audit_log "
        "WHERE event_type = 'completed' GROUP BY proposal_id HAVING count(*) <> 1",
    )
    assert ends == []
    ended = _rows(
        pg_url,
        "SELECT count(DISTINCT proposal_id) FROM action_audit_log WHERE event_type = 'completed'",
    )
    assert ended == [(BUSY_ACTIONS,)]

    async def verify() -> tuple[bool, int, str]:
        db = PgActionDB(pg_url, read_only=True)
        async with db:
            return await db.read(audit.verify_chain)

    ok, _, message = asyncio.run(verify())
    assert ok, message


async def _propose_busy(url: str) -> None:
    ex = ActionExecutor(
        NOWHERE,
        ActionRegistry.from_subject(TestSubject()),
        approval_mode=False,
        db=PgActionDB(url),
    )
    async with ex:
        await ex.propose_actions(
            [
                {"action_name": "ok", "parameters": {"seconds": 0.02}, "reason": f"busy {i}"}
                for i in range(BUSY_ACTIONS)
            ]
        )
