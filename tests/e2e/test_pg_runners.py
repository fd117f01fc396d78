"""Several runner processes on one PostgreSQL database: every action runs exactly once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import psycopg
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db import audit
from operator_core.db.pg.store import PgActionDB
from operator_core.db.url import NOWHERE
from operator_core.subjects.demo import DemoSubject

from tests.e2e.conftest import cli_env

ACTIONS = 40
RUNNERS = 3


async def _propose(url: str) -> None:
    db = PgActionDB(url)
    ex = ActionExecutor(
        NOWHERE, ActionRegistry.from_subject(DemoSubject()), approval_mode=False, db=db
    )
    async with ex:
        for i in range(ACTIONS):
            await ex.propose_action("check_health", {}, f"round {i}")
    assert ex.registry.subject is not None
    await ex.registry.subject.aclose()


def test_runners_on_several_processes_run_each_action_once(tmp_path: Path, pg_url: str) -> None:
    asyncio.run(_propose(pg_url))
    env = cli_env(tmp_path, OPERATOR_DEMO_SPEED="1000", OPERATOR_DEMO_FAILURE_RATE="0")
    runners = [
        subprocess.Popen(
            [sys.executable, "-m", "operator_core.cli", "--db", pg_url, "--subject", "demo"]
            + ["run", "--until-idle", "--concurrency", "4"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(RUNNERS)
    ]
    for runner in runners:
        _, err = runner.communicate(timeout=120)
        assert runner.returncode == 0, err
    with psycopg.connect(pg_url) as conn:
        statuses = conn.execute(
            "SELECT status, count(*) FROM action_proposals GROUP BY status"
        ).fetchall()
        attempts = conn.execute(
            "SELECT proposal_id, count(*) FROM action_records GROUP BY proposal_id "
            "HAVING count(*) <> 1"
        ).fetchall()
        recorded = conn.execute("SELECT count(DISTINCT proposal_id) FROM action_records").fetchone()
    assert statuses == [("completed", ACTIONS)]
    assert attempts == [] and recorded == (ACTIONS,)

    async def verify() -> tuple[bool, int, str]:
        db = PgActionDB(pg_url, read_only=True)
        async with db:
            return await db.read(audit.verify_chain)

    ok, _, message = asyncio.run(verify())
    assert ok, message
