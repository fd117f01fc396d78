from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import pytest
from hypothesis import settings

from tests import backends
from tests.backends import (  # noqa: F401  (fixtures: one test per backend)
    FAST_RETRY,
    db_path,
    executor,
    make_executor,
    target,
)
from tests.pg import pg_empty_url, pg_pool, pg_server, pg_url  # noqa: F401  (PostgreSQL)

# No per-example deadline: this machine is shared and noisy, and speed is measured by the
# benchmarks in bench/, never by a test (a 200 ms deadline failed a 160 ms example at 275 ms).
settings.register_profile("operator", deadline=None)
settings.load_profile("operator")

# No audit checkpoints in-process unless a test asks (tests/e2e/test_audit_anchor*.py): they
# would land in the real state directory. The CLI's subprocesses get a clean environment.
os.environ.setdefault("OPERATOR_AUDIT_CHECKPOINT_DIR", "off")
# The CLI keeps the help texts Typer printed in the user's cache (cli/help_cache.py): the
# CLI processes tests start keep theirs in one of the session's own, removed at its end.
_CACHE = tempfile.mkdtemp(prefix="operator-tests-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE


def pytest_configure(config: pytest.Config) -> None:
    backends.configure(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    backends.generate(metafunc)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backends.deselect(config, items)


# A test that leaves a database open leaves its connection's thread (not a daemon) running,
# and the test process then never exits: CI would wait out its whole time limit in silence.
# At the end of the session such threads are named and the run fails at once instead.
_leaked: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import threading

    shutil.rmtree(_CACHE, ignore_errors=True)
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
