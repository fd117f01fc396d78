"""Shared steps for execution tests: store a definition, run the real Runner until idle,
read what it left in the real SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from operator_core.actions.executor import ActionExecutor
from operator_core.automations.definition import parse_definition
from operator_core.automations.validate import check_definition
from operator_core.cli.automations import new_version
from operator_core.db.executions import Execution
from operator_core.runner import Runner

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


async def store(ex: ActionExecutor, data: dict[str, Any], note: str = "") -> int:
    """Check a definition against the executor's registry and store it: its version."""
    d = parse_definition(data, "test")
    check_definition(d, ex.registry, "test")
    stored = await ex.store_automation(d.name, new_version(d, note, None), "ana")
    return stored.version


async def run_idle(ex: ActionExecutor) -> Runner:
    """The real runner until nothing is left to do now (a frozen clock stays put)."""
    runner = Runner(ex, poll_interval=0.02, grace_seconds=1.0)
    await runner.run(until_idle=True)
    return runner


async def executions(ex: ActionExecutor, automation: str | None = None) -> list[Execution]:
    return list(reversed(await ex.list_executions(automation)))


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def proposals(db: Path) -> list[sqlite3.Row]:
    return rows(db, "SELECT * FROM action_proposals ORDER BY id")


def actions_run(db: Path) -> list[str]:
    return [r["action_name"] for r in proposals(db)]
