"""Runners record a heartbeat (schema v11): a row when they start, a newer beat while they
run (idle too), and ``stopped_at`` when they stop; a runner silent for too long is not up."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.clock import utcnow
from operator_core.db import heartbeats
from operator_core.runner import Runner

from tests.support.rows import database_of, rows
from tests.support.wait import wait_for


def runner_rows(db: Path) -> list[tuple[str, str, int, str, str, str | None]]:
    return [
        tuple(r)
        for r in rows(db, "SELECT id, host, pid, started_at, beat_at, stopped_at FROM runners")
    ]


async def test_a_runner_beats_while_idle_and_says_when_it_stops(
    executor: ActionExecutor, db_path: Path
) -> None:
    runner = Runner(executor, poll_interval=0.05, grace_seconds=0.5)
    runner.heartbeat_seconds = 0.1
    task = asyncio.create_task(runner.run())
    try:

        async def up() -> bool:
            return len(runner_rows(db_path)) == 1

        await wait_for(up)
        [(rid, host, pid, started, first_beat, stopped)] = runner_rows(db_path)
        assert (rid, host, pid, stopped) == (
            runner.runner_id,
            socket.gethostname(),
            os.getpid(),
            None,
        )
        assert started == first_beat

        async def beat_again() -> bool:
            return runner_rows(db_path)[0][4] > first_beat

        await wait_for(beat_again, timeout=3.0)  # nothing to do, and still beating
        live = await executor.db.read(heartbeats.live_runners, utcnow())
        assert [r.id for r in live] == [runner.runner_id]
    finally:
        runner.request_stop()
        await asyncio.wait_for(task, 5)
    [(_, _, _, _, beat_at, stopped)] = runner_rows(db_path)
    assert stopped is not None and stopped == beat_at
    assert await executor.db.read(heartbeats.live_runners, utcnow()) == []


async def test_a_silent_runner_is_not_up_and_a_day_old_one_is_pruned(
    executor: ActionExecutor,
) -> None:
    now = utcnow()
    db = executor.db
    await db.write(heartbeats.started, "gone:1:aa", "h1", 1, now - timedelta(days=2))
    await db.write(heartbeats.started, "silent:2:bb", "h2", 2, now - timedelta(minutes=5))
    await db.write(heartbeats.beat, "silent:2:bb", "h2", 2, now - timedelta(seconds=45))
    await db.write(heartbeats.started, "alive:3:cc", "h3", 3, now - timedelta(minutes=5))
    await db.write(heartbeats.beat, "alive:3:cc", "h3", 3, now - timedelta(seconds=5))
    live = await db.read(heartbeats.live_runners, now)
    assert [r.id for r in live] == ["alive:3:cc"]
    # The two-day-old row went when the next runner started.
    assert sorted(r[0] for r in runner_rows(database_of(db))) == ["alive:3:cc", "silent:2:bb"]


@pytest.mark.sqlite_only("SQLite's query plan (EXPLAIN QUERY PLAN)")
async def test_the_live_runners_read_walks_its_index(executor: ActionExecutor) -> None:
    plan = rows(
        executor.db_path,
        "EXPLAIN QUERY PLAN " + heartbeats.LIVE_SQL,
        {"since": "2026-01-01T00:00:00.000000Z"},
    )
    assert any("idx_runners_live" in str(r[3]) for r in plan), plan
