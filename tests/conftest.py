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
