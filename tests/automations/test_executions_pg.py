"""Every test of test_executions.py again on PostgreSQL: the same real Runner, frozen clock,
delays, timeouts, age triggers, cancels and the kill switch, with the executors on a fresh
PostgreSQL database (``pg_url``) instead of a SQLite file. The fixtures below replace the
SQLite ones for this module only; the tests' own reads of the database go to the server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db.dialect import translate
from operator_core.db.pg.rows import Row
from operator_core.db.pg.store import PgActionDB

import tests.automations.test_executions as on_sqlite
from tests.automations.test_executions import *  # noqa: F403 - the tests, run here again
from tests.conftest import FAST_RETRY
from tests.support.subjects import TestSubject


def _reader(url: str) -> Callable[..., list[Row]]:
    def rows(_db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        with psycopg.connect(url) as conn:
            cur = conn.execute(translate(sql), params)  # type: ignore[arg-type]
            index = {d.name: i for i, d in enumerate(cur.description or ())}
            return [Row(r, index) for r in cur.fetchall()]

    return rows


@pytest.fixture(autouse=True)
def _reads_on_postgres(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _reader(pg_url)
    monkeypatch.setattr(on_sqlite, "rows", rows)
    monkeypatch.setattr(on_sqlite, "proposals", lambda db: rows(db, PROPOSALS_SQL))
    monkeypatch.setattr(
        on_sqlite, "actions_run", lambda db: [r["action_name"] for r in rows(db, PROPOSALS_SQL)]
    )


PROPOSALS_SQL = "SELECT * FROM action_proposals ORDER BY id"


@pytest.fixture
async def make_executor(pg_url: str) -> AsyncIterator[Callable[..., Any]]:
    """tests/conftest.py's factory, on PostgreSQL (its clock is the database's)."""
    opened: list[ActionExecutor] = []

    async def factory(**kwargs: Any) -> ActionExecutor:
        kwargs.setdefault("approval_mode", False)
        kwargs.setdefault("retry_config", FAST_RETRY)
        subject = kwargs.pop("subject", None) or TestSubject()
        assert kwargs.pop("path", None) is None, "one database per test here"
        db = PgActionDB(pg_url, clock=kwargs.get("clock"))
        ex = ActionExecutor("unused", ActionRegistry.from_subject(subject), db=db, **kwargs)
        await ex.open()
        opened.append(ex)
        return ex

    yield factory
    for ex in opened:
        await ex.close()
