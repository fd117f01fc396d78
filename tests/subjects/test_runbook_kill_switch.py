"""The kill switch and runner shutdown stop a running command: its whole process group."""

from __future__ import annotations

import asyncio
import os
import time

from operator_core.model.types import ActionStatus
from operator_core.runner import Runner

from .conftest import Runbooks
from .helpers import engine, is_alive, live_in_group, wait_for_file

LONG = """
[actions.long_job]
description = "Spawns a child that ignores SIGTERM, then sleeps"
argv = [@PY@, @TOOL@, "spawn", "{pidfile}"]
timeout = 60
[actions.long_job.params.pidfile]
type = "string"
"""


async def _wait_gone(pgid: int, limit: float) -> float:
    started = time.monotonic()
    while live_in_group(pgid):
        assert time.monotonic() - started < limit, f"process group {pgid} still alive"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _wait_status(executor, pid: int, status: ActionStatus, limit: float = 3.0):
    deadline = time.monotonic() + limit
    while True:
        p = await executor.db.get_proposal(pid)
        if p.status == status and p.claimed_by is None:
            return p
        assert time.monotonic() < deadline, f"action is {p.status}, not {status}"
        await asyncio.sleep(0.02)


async def test_kill_switch_from_another_connection_kills_the_process_group(
    runbooks: Runbooks, tmp_path
) -> None:
    subject = runbooks.load(LONG)
    db = tmp_path / "ops.db"
    pidfile = tmp_path / "job.pids"
    async with engine(db, subject) as ex:
        p = await ex.propose_action("long_job", {"pidfile": str(pidfile)}, reason="long")
        assert p.id is not None
        runner = Runner(ex, poll_interval=0.1, grace_seconds=1.0)
        task = asyncio.create_task(runner.run())
        try:
            parent, child = map(int, (await wait_for_file(pidfile)).split())
            assert is_alive(parent) and is_alive(child)
            pgid = os.getpgid(parent)
            async with engine(db, subject) as other:
                result = await other.kill_switch("oncall@ops-box")
                assert result.executing_signalled == [p.id]
                elapsed = await _wait_gone(pgid, limit=1.0)
                assert not is_alive(child)
                done = await _wait_status(other, p.id, ActionStatus.CANCELLED)
                records = await other.db.list_records(p.id)
        finally:
            runner.request_stop()
            await asyncio.wait_for(task, 5)
    assert elapsed < 1.0
    assert done.cancel_reason == "kill switch"
    [record] = records
    assert record.success is False
    assert record.error_message is not None and "kill switch" in record.error_message
    assert record.completed_at is not None


async def test_runner_shutdown_kills_the_process_group(runbooks: Runbooks, tmp_path) -> None:
    subject = runbooks.load(LONG)
    pidfile = tmp_path / "job.pids"
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("long_job", {"pidfile": str(pidfile)}, reason="long")
        assert p.id is not None
        runner = Runner(ex, poll_interval=0.1, grace_seconds=0.2)
        task = asyncio.create_task(runner.run())
        parent, child = map(int, (await wait_for_file(pidfile)).split())
        pgid = os.getpgid(parent)
        runner.request_stop()
        await asyncio.wait_for(task, 5)
        assert live_in_group(pgid) == [] and not is_alive(child)
        after = await ex.db.get_proposal(p.id)
        [record] = await ex.db.list_records(p.id)
    assert after is not None and after.status != ActionStatus.EXECUTING
    assert record.success is False
    assert record.error_message is not None and "runner shutdown" in record.error_message


async def test_cancelling_the_action_kills_its_process_group(runbooks: Runbooks, tmp_path) -> None:
    subject = runbooks.load(LONG)
    pidfile = tmp_path / "job.pids"
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("long_job", {"pidfile": str(pidfile)}, reason="long")
        assert p.id is not None
        runner = Runner(ex, poll_interval=0.1, grace_seconds=1.0)
        task = asyncio.create_task(runner.run())
        try:
            parent, _ = map(int, (await wait_for_file(pidfile)).split())
            pgid = os.getpgid(parent)
            async with engine(tmp_path / "ops.db", subject) as dashboard:
                await dashboard.cancel_proposal(p.id, "oncall@ops-box", "wrong host")
                await _wait_gone(pgid, limit=1.5)
                done = await _wait_status(dashboard, p.id, ActionStatus.CANCELLED)
        finally:
            runner.request_stop()
            await asyncio.wait_for(task, 5)
    assert done.status == ActionStatus.CANCELLED
