"""Wake-ups across processes on PostgreSQL: a NOTIFY, not the poll, starts approved work.

Each runner here polls every 60 s (OPERATOR_PG_POLL_SECONDS) and beats every 10 s (a beat
also ends its sleep). So each approval is made soon after a beat, and an action that starts
within 5 s of its approval and before the runner's next beat was started by the NOTIFY.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from operator_core.db.pg.store import PgActionDB

from tests.e2e.conftest import cli_env, wait_for
from tests.pg import PgServer
from tests.support.pgcluster import free_port

ENV = {"OPERATOR_DEMO_SPEED": "1000", "OPERATOR_DEMO_FAILURE_RATE": "0"}
SLOW_POLL = {"OPERATOR_PG_POLL_SECONDS": "60"}
BEAT = timedelta(seconds=10)  # heartbeats.HEARTBEAT_SECONDS
PROMPT = timedelta(seconds=5)
LISTENING = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = 'operator-listen'"
)
LAST_BEAT = "SELECT max(beat_at) FROM runners WHERE stopped_at IS NULL"
TIMES = (
    "SELECT p.status, p.approved_at, r.started_at FROM action_proposals p "
    "LEFT JOIN action_records r ON r.proposal_id = p.id WHERE p.id = %s"
)


def _cli(tmp_path: Path, url: str, *args: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", url, "--subject", "demo", *args],
        env=cli_env(tmp_path, **ENV, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _one(url: str, sql: str, params: Any = ()) -> Any:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _pending(tmp_path: Path, url: str) -> int:
    """An action that waits for a human's approval."""
    out = _cli(tmp_path, url, "--approval-mode", "on", "propose", "check_health", "--reason", "x")
    return int(out)


@contextmanager
def _runner(tmp_path: Path, url: str, **env: str) -> Iterator[Path]:
    log = tmp_path / f"runner-{time.monotonic_ns()}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "operator_core.cli", "--db", url, "--subject", "demo", "run"],
            env=cli_env(tmp_path, **ENV, **env),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_for(lambda: _one(url, LAST_BEAT)[0], 30, 0.05, "the runner's first beat")
        yield log
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()


def _fresh_beat(url: str, after: str | None) -> datetime:
    """The runner's next beat after ``after`` (None: its last one)."""
    beat = wait_for(
        lambda: (b := _one(url, LAST_BEAT)[0]) and (after is None or b > after) and b,
        30,
        0.02,
        "a heartbeat",
    )
    return _when(beat)


def _approve_and_time(tmp_path: Path, url: str, pid: int, beat: datetime) -> None:
    """Approve ``pid`` now; it must start within PROMPT of its approval, before the beat
    after ``beat`` (so neither the heartbeat nor the 60 s poll woke the runner)."""
    _cli(tmp_path, url, "approve", str(pid))
    row = wait_for(lambda: (r := _one(url, TIMES, (pid,)))[0] == "completed" and r, 30, 0.05)
    _, approved, started = row
    assert _when(approved) < beat + BEAT - PROMPT, "the approval came too late to tell"
    assert _when(started) - _when(approved) < PROMPT
    assert _when(started) < beat + BEAT


def test_an_idle_runner_starts_an_approval_from_another_process_at_once(
    tmp_path: Path, pg_url: str
) -> None:
    pid = _pending(tmp_path, pg_url)
    with _runner(tmp_path, pg_url, **SLOW_POLL):
        wait_for(lambda: _one(pg_url, LISTENING)[0] == 1, 30, 0.05, "LISTEN")
        beat = _fresh_beat(pg_url, None)
        time.sleep(0.3)  # past its first cycle: asleep
        _approve_and_time(tmp_path, pg_url, pid, beat)


def test_the_runner_listens_again_after_a_server_restart(
    tmp_path: Path, pg_server: PgServer, pg_url: str
) -> None:
    if pg_server.cluster is None:
        pytest.skip("PG_TEST_URL names an external server: this test restarts its own")
    pid = _pending(tmp_path, pg_url)
    with _runner(tmp_path, pg_url, **SLOW_POLL) as log:
        wait_for(lambda: _one(pg_url, LISTENING)[0] == 1, 30, 0.05, "LISTEN")
        pg_server.cluster.restart()
        last = _one(pg_url, LAST_BEAT)[0]
        wait_for(lambda: _one(pg_url, LISTENING)[0] == 1, 30, 0.05, "LISTEN again")
        beat = _fresh_beat(pg_url, last)
        _approve_and_time(tmp_path, pg_url, pid, beat)
    text = log.read_text()
    assert "lost the LISTEN connection" in text and "back after" in text
    assert pg_server.cluster.password not in text


def test_without_listen_the_poll_still_delivers(tmp_path: Path, pg_url: str) -> None:
    nowhere = f"postgresql://u:hidden-pw@127.0.0.1:{free_port()}/x"
    pid = _pending(tmp_path, pg_url)
    poll = {"OPERATOR_PG_POLL_SECONDS": "0.3", "OPERATOR_PG_LISTEN_URL": nowhere}
    with _runner(tmp_path, pg_url, **poll) as log:
        beat = _fresh_beat(pg_url, None)
        time.sleep(0.3)
        _approve_and_time(tmp_path, pg_url, pid, beat)
        assert _one(pg_url, LISTENING)[0] == 0
    text = log.read_text()
    assert "cannot LISTEN" in text
    assert "hidden-pw" not in text


async def test_a_dashboard_waiter_wakes_on_another_process_commit(
    tmp_path: Path, pg_url: str
) -> None:
    from operator_tui.live import ChangeWatcher

    db = PgActionDB(pg_url)
    await db.open()
    watcher = ChangeWatcher(db, poll_interval=60)
    watcher.start()
    try:
        await asyncio.to_thread(
            wait_for, lambda: _one(pg_url, LISTENING)[0] == 1, 30, 0.05, "LISTEN"
        )
        await watcher.wait()  # the wake-up a connection gives as it starts listening
        assert await watcher.take_change()  # the first look
        proposing = asyncio.create_task(asyncio.to_thread(_pending, tmp_path, pg_url))
        began = time.monotonic()
        await watcher.wait()
        waited = time.monotonic() - began
        pid = await proposing
        assert waited < 20, "woken by the poll, not the NOTIFY"
        assert await watcher.take_change() and watcher.external
        assert (await db.get_proposal(pid)) is not None
    finally:
        watcher.stop()
        await db.close()


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("OPERATOR_PG_POLL_SECONDS", "0", "OPERATOR_PG_POLL_SECONDS must be a number"),
        ("OPERATOR_PG_LISTEN_URL", "mysql://u:pw-not-shown@h/d", "OPERATOR_PG_LISTEN_URL must"),
    ],
)
def test_a_bad_setting_is_one_line(
    tmp_path: Path, pg_url: str, name: str, value: str, says: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", pg_url, "--subject", "demo"]
        + ["run", "--until-idle"],
        env=cli_env(tmp_path, **ENV, **{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert "pw-not-shown" not in done.stderr
