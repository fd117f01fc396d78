from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.actions.retry import RetryConfig

from tests.pg import pg_empty_url, pg_server, pg_url  # noqa: F401  (PostgreSQL fixtures)
from tests.support.subjects import TestSubject

# No per-example deadline: this machine is shared and noisy, and speed is measured by the
# benchmarks in bench/, never by a test (a 200 ms deadline failed a 160 ms example at 275 ms).
settings.register_profile("operator", deadline=None)
settings.load_profile("operator")

# No audit checkpoints in-process unless a test asks (tests/e2e/test_audit_anchor*.py): they
# would land in the real state directory. The CLI's subprocesses get a clean environment.
os.environ.setdefault("OPERATOR_AUDIT_CHECKPOINT_DIR", "off")

FAST_RETRY = RetryConfig(max_attempts=3, min_wait_seconds=0.05, max_wait_seconds=0.2)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "operator.db"


@pytest.fixture
async def make_executor(
    db_path: Path,
) -> AsyncIterator[Callable[..., Any]]:
    """Factory for opened executors on the test database (closed at teardown)."""
    opened: list[ActionExecutor] = []

    async def factory(**kwargs: Any) -> ActionExecutor:
        kwargs.setdefault("approval_mode", False)
        kwargs.setdefault("retry_config", FAST_RETRY)
        subject = kwargs.pop("subject", None) or TestSubject()
        path = kwargs.pop("path", db_path)
        ex = ActionExecutor(path, ActionRegistry.from_subject(subject), **kwargs)
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


# A test that leaves a database open leaves its connection's thread (not a daemon) running,
# and the test process then never exits: CI would wait out its whole time limit in silence.
# At the end of the session such threads are named and the run fails at once instead.
_leaked: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import threading

    _leaked.extend(
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread()
        and not t.daemon
        # Pool workers end at exit on their own (asyncio's default executor, futures).
        and not t.name.startswith(("ThreadPoolExecutor", "asyncio_"))
    )
    if _leaked:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _leaked:
        terminalreporter.write_line(
            f"threads left running after the tests (a database or executor not closed?): "
            f"{', '.join(_leaked)}",
            red=True,
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    if _leaked:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(pytest.ExitCode.TESTS_FAILED))
