"""Agents' proposal budgets on PostgreSQL: twelve proposals at once against a budget of five
store exactly five, whether they come from twelve ``operator`` processes or from twelve
connections of one process, and each of the seven refusals is audited (the check counts the
window in the insert's transaction, under the write lock: docs/postgres.md)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db.agent_budgets import AgentBudgetError
from operator_core.db.pg.store import PgActionDB
from operator_core.subjects.loader import load_subject

from tests.e2e.conftest import cli_env

AT_ONCE = 12
BUDGET = 5
REFUSED = "agent claude: 5 of 5 proposals per 10m used; next in "


def _argv(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "operator_core.cli", "--db", url, "--subject", "demo", *args]


def _rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql, params)]  # type: ignore[arg-type]


def _set_budget(tmp_path: Path, url: str) -> None:
    done = subprocess.run(
        _argv(url, "agents", "set", "claude", "--max-proposals", str(BUDGET), "--per", "10m"),
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "agent claude: 5 proposals per 10m; may propose any action\n"


def _stored_and_refused(url: str) -> tuple[int, list[dict[str, Any]]]:
    stored = _rows(
        url, "SELECT COUNT(*) FROM action_proposals WHERE proposed_by = %s", ("agent:claude",)
    )[0][0]
    refusals = _rows(
        url,
        "SELECT event_data FROM action_audit_log WHERE event_type = %s ORDER BY id",
        ("agent_proposal_refused",),
    )
    return int(stored), [json.loads(r[0]) for r in refusals]


# Fourteen interpreter starts, twelve at once: no race in the timing, only their cost.
@pytest.mark.timeout(360)
def test_twelve_processes_at_once_store_exactly_the_budget(tmp_path: Path, pg_url: str) -> None:
    _set_budget(tmp_path, pg_url)
    argv = _argv(pg_url, "--actor", "agent:claude", "propose", "check_health", "--reason")
    procs = [
        subprocess.Popen(
            [*argv, f"p{n}"],
            env=cli_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(AT_ONCE)
    ]
    outcomes = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    passed = [o for o in outcomes if o[0] == 0]
    failed = [o for o in outcomes if o[0] != 0]
    assert len(passed) == BUDGET and len(failed) == AT_ONCE - BUDGET, outcomes
    for _code, out, err in failed:
        assert out == "" and err.startswith(f"operator: {REFUSED}") and err.count("\n") == 1, err
    stored, refusals = _stored_and_refused(pg_url)
    assert stored == BUDGET
    assert len(refusals) == AT_ONCE - BUDGET
    assert all(r["refused"] == "budget" and r["used"] == BUDGET for r in refusals), refusals
    # Another agent (no budget) is not held back by claude's.
    other = subprocess.run(
        _argv(pg_url, "--actor", "agent:cursor", "propose", "check_health", "--reason", "x"),
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert other.returncode == 0, other.stderr


async def test_twelve_connections_at_once_store_exactly_the_budget(
    tmp_path: Path, pg_url: str
) -> None:
    """Twelve executors, each on its own connection and thread: their transactions reach
    the server together, so only the lock keeps a check from counting a stale window."""
    _set_budget(tmp_path, pg_url)
    registry = ActionRegistry.from_subject(load_subject("demo"))
    executors = [
        ActionExecutor("unused", registry, db=PgActionDB(pg_url), seed_policy=False)
        for _ in range(AT_ONCE)
    ]
    try:
        await asyncio.gather(*(ex.open() for ex in executors))
        results = await asyncio.gather(
            *(
                ex.propose_action("check_health", reason=f"c{n}", proposed_by="agent:claude")
                for n, ex in enumerate(executors)
            ),
            return_exceptions=True,
        )
    finally:
        await asyncio.gather(*(ex.close() for ex in executors))
    refused = [r for r in results if isinstance(r, AgentBudgetError)]
    assert len(refused) == AT_ONCE - BUDGET, results
    assert all(str(r).startswith(REFUSED) for r in refused)
    stored, refusals = _stored_and_refused(pg_url)
    assert stored == BUDGET == AT_ONCE - len(refused)
    assert len(refusals) == len(refused)
