"""One suite, two engines: a test that opens the engine through ``make_executor``,
``executor`` or ``target`` runs once per backend, as ``test_x[sqlite]`` and
``test_x[postgres]``.

A test that is SQLite by nature (it reads the file with sqlite3, a PRAGMA, the WAL, the kill
file, a corrupted file, SQLite's schema history) says so with
``@pytest.mark.sqlite_only("why")`` (or a module's ``pytestmark``) and runs as
``test_x[sqlite]`` only; docs/postgres.md lists those files and why. A test of a command
that refuses a PostgreSQL URL today (not in cli/app.py POSTGRES_COMMANDS, its port is
another part of issue 26) says ``@pytest.mark.pg_not_ported("area")``: its ``[postgres]``
run is skipped as "not yet ported: area", to be dropped with the port. The directories
whose PostgreSQL runs are files of their own (the dashboard, automations, agents, the audit
anchor, the runbook subjects: ``AREAS``) are not parametrised. A case of a parametrised test
marked ``sqlite_only`` through its ``pytest.param`` has no ``[postgres]`` run (``deselect``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.actions.retry import RetryConfig

from tests.support.rows import Db, PgTarget
from tests.support.subjects import TestSubject

BACKENDS = ("sqlite", "postgres")
MARKER = "sqlite_only"
NOT_PORTED = "pg_not_ported"

FAST_RETRY = RetryConfig(max_attempts=3, min_wait_seconds=0.05, max_wait_seconds=0.2)

_TESTS = Path(__file__).resolve().parent
# Directories whose PostgreSQL runs are dedicated files (test_pg_dashboard.py,
# test_executions_pg.py, test_mcp_postgres.py, test_pg_audit_cli.py, ...), not this fixture.
AREAS = {
    "tui": "the dashboard on PostgreSQL: tests/tui/test_pg_dashboard.py",
    "automations": "automations on PostgreSQL: test_executions_pg.py, test_pg_automations.py",
    "agents": "agents on PostgreSQL: tests/agents/test_mcp_postgres.py",
    "anchor": "the audit anchor on PostgreSQL: tests/e2e/test_pg_audit_cli.py",
    "subjects": "runbook subjects: the engine beneath them is tested on both",
}


def configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(reason): runs on SQLite only (the reason is required)"
    )
    config.addinivalue_line(
        "markers", f"{NOT_PORTED}(area): the [postgres] run is skipped until area is ported"
    )


def _argument(definition: pytest.Item, name: str) -> str | None:
    marker = definition.get_closest_marker(name)
    if marker is None:
        return None
    if not marker.args or not str(marker.args[0]).strip():
        raise pytest.UsageError(f"{definition.nodeid}: {name} needs a reason")
    return str(marker.args[0])


def sqlite_only_reason(definition: pytest.Item) -> str | None:
    """Why a test runs on SQLite only, or None: it runs on both."""
    reason = _argument(definition, MARKER)
    if reason is not None:
        return reason
    try:
        area = Path(definition.path).resolve().relative_to(_TESTS).parts[0]
    except ValueError:
        return None
    return AREAS.get(area)


def generate(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    if sqlite_only_reason(metafunc.definition):
        metafunc.parametrize("backend", ["sqlite"], ids=["sqlite"])
        return
    area = _argument(metafunc.definition, NOT_PORTED)
    skip = [pytest.mark.skip(reason=f"not yet ported: {area}")] if area else []
    params = [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=skip),
    ]
    metafunc.parametrize("backend", params)


def deselect(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the ``[postgres]`` run of a case marked ``sqlite_only`` through its own
    ``pytest.param`` (``generate`` sees only the function's marks): not run, not skipped."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_pg = callspec is not None and callspec.params.get("backend") == "postgres"
        (drop if on_pg and item.get_closest_marker(MARKER) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The test's database as the CLI's ``--db`` takes it: the SQLite file's path, or the
    URL of a migrated PostgreSQL database of its own (``pg_url``)."""
    if backend == "postgres":
        # A case of a parametrised test (a pytest.param's marks) may say it too.
        only = request.node.get_closest_marker(MARKER)
        if only is not None:
            pytest.skip(f"SQLite only: {only.args[0]}")
        area = request.node.get_closest_marker(NOT_PORTED)
        if area is not None:
            pytest.skip(f"not yet ported: {area.args[0]}")
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "operator.db")


@pytest.fixture
def db_path(tmp_path: Path, request: pytest.FixtureRequest) -> Db:
    """The SQLite file a test reads beside the engine; in a test's ``[postgres]`` run (it
    also asks for ``make_executor``, ``executor``, ``target`` or ``db``) its database as a
    ``PgTarget``, which tests/support/rows.py reads and sqlite3 refuses."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("backend") == "postgres":
        return PgTarget(str(request.getfixturevalue("target")), tmp_path)
    return tmp_path / "operator.db"


def open_executor(target: str, **kwargs: Any) -> ActionExecutor:
    """An executor (not opened) on ``target``, a path or a PostgreSQL URL; ``subject``
    defaults to tests.support.subjects.TestSubject."""
    subject = kwargs.pop("subject", None) or TestSubject()
    registry = ActionRegistry.from_subject(subject)
    if target.startswith(("postgresql://", "postgres://")):
        from operator_core.db.pg.store import PgActionDB
        from operator_core.db.url import NOWHERE

        db = PgActionDB(target, clock=kwargs.get("clock"))
        return ActionExecutor(NOWHERE, registry, db=db, **kwargs)
    return ActionExecutor(target, registry, **kwargs)


@pytest.fixture
async def make_executor(target: str) -> AsyncIterator[Callable[..., Any]]:
    """Factory for opened executors on the test database (closed at teardown). ``path``
    opens another SQLite file (a test on SQLite only)."""
    opened: list[ActionExecutor] = []

    async def factory(**kwargs: Any) -> ActionExecutor:
        kwargs.setdefault("approval_mode", False)
        kwargs.setdefault("retry_config", FAST_RETRY)
        where = kwargs.pop("path", None)
        ex = open_executor(str(where) if where is not None else target, **kwargs)
        await ex.open()
        opened.append(ex)
        return ex

    yield factory
    for ex in opened:
        await ex.close()


@pytest.fixture
async def executor(make_executor: Callable[..., Any]) -> ActionExecutor:
    ex: ActionExecutor = await make_executor()
    return ex
