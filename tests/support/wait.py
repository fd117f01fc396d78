"""Run a real runner in the background and wait for database conditions, without sleeps
of fixed length."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from operator_core.actions.executor import ActionExecutor
from operator_core.runner import Runner


async def wait_for(
    cond: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.02
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await cond():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def running(executor: ActionExecutor, **kwargs: object) -> AsyncIterator[Runner]:
    """A Runner on its own connection (like a separate process would have), on the same
    database as ``executor`` (a SQLite file or a PostgreSQL URL)."""
    url = getattr(executor.db, "url", None)
    own_db = None
    if url is not None:
        from operator_core.db.pg.store import PgActionDB

        own_db = PgActionDB(url)
    ex = ActionExecutor(
        executor.db_path,
        executor.registry,
        approval_mode=executor.approval_mode,
        retry_config=executor.retry_config,
        db=own_db,
    )
    kwargs.setdefault("grace_seconds", 0.5)
    runner = Runner(ex, **kwargs)  # type: ignore[arg-type]
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.request_stop()
        await asyncio.wait_for(task, 15)
        await ex.close()


async def status_of(executor: ActionExecutor, pid: int) -> str:
    p = await executor.db.get_proposal(pid)
    assert p is not None
    return p.status.value
