"""Helpers for end-to-end tests: the real ``operator`` CLI in subprocesses on a real file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from operator_core.actions.executor import ActionExecutor

from tests.backends import FAST_RETRY, open_executor
from tests.support.rows import Db, PgTarget, pg_rows

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
SUBJECT = "tests.support.subjects:TestSubject"


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: the repo importable, no stray OPERATOR_* settings, state in tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPERATOR_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["OPERATOR_ACTOR"] = "tester@e2e"
    env["PYTHONWARNINGS"] = "ignore"
    env.update(extra)
    return env


def cli_argv(db: Db, *args: str, subject: str | None = SUBJECT) -> list[str]:
    argv = [sys.executable, "-m", "operator_core.cli", "--db", str(db)]
    if subject is not None:
        argv += ["--subject", subject]
    return argv + list(args)


def run_cli(
    db: Db,
    *args: str,
    env: dict[str, str] | None = None,
    subject: str | None = SUBJECT,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_argv(db, *args, subject=subject),
        env=env or cli_env(db.parent),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_runner(
    db: Db, log: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``operator run`` in the background; its stderr goes to ``log``."""
    with log.open("wb") as err:
        return subprocess.Popen(
            cli_argv(db, "run", *args),
            env=env or cli_env(db.parent),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def wait_for(
    predicate: Callable[[], T], timeout: float, interval: float = 0.02, what: str = "condition"
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def query(db: Db, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Rows (read by position or column name) of one query, written for SQLite."""
    if isinstance(db, PgTarget):
        return pg_rows(db.url, sql, params)
    conn = sqlite3.connect(db, timeout=5, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# PostgreSQL's tables, as sqlite_master lists SQLite's.
_PG_TABLES_SQL = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"


def dump(db: Db) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Every row of every table (and the schema version): 'changes nothing' compares these."""
    if isinstance(db, PgTarget):
        tables = [r[0] for r in pg_rows(db.url, _PG_TABLES_SQL)]
        return [
            (t, [tuple(r) for r in pg_rows(db.url, f"SELECT * FROM {t} ORDER BY 1")])
            for t in tables
        ]
    conn = sqlite3.connect(db, timeout=5, isolation_level=None)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        out = [("user_version", [conn.execute("PRAGMA user_version").fetchone()])]
        for t in tables:
            out.append((t, conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()))
        return out
    finally:
        conn.close()


def seed(db: Db, fn: Callable[[ActionExecutor], Awaitable[T]], *, approval_mode: bool = False) -> T:
    """Set up state in-process through the engine's own API (faster than a CLI call each)."""

    async def go() -> T:
        ex = open_executor(str(db), approval_mode=approval_mode, retry_config=FAST_RETRY)
        async with ex:
            return await fn(ex)

    return asyncio.run(go())


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Bad input: a non-zero exit and exactly one clear line on stderr, never a traceback."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    return lines[0]


@pytest.fixture
def db(db_path: Db, target: str) -> Db:
    """The test's database, one test per backend (tests/backends.py): a SQLite file's path,
    or a ``PgTarget``."""
    return db_path


@pytest.fixture
def cli_in_process(
    db: Db, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The CLI's own ``main`` in this process (no interpreter start-up per call), with the
    same clean environment as ``run_cli``; for the many one-line error cases."""
    from operator_core.cli import main

    def invoke(
        *args: str, subject: str | None = SUBJECT, **env: str
    ) -> subprocess.CompletedProcess[str]:
        for key in [k for k in os.environ if k.startswith("OPERATOR_")]:
            monkeypatch.delenv(key)
        for key, value in cli_env(db.parent, **env).items():
            if key.startswith(("OPERATOR_", "XDG_")):
                monkeypatch.setenv(key, value)
        argv = cli_argv(db, *args, subject=subject)[3:]  # drop "python -m operator_core.cli"
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(argv, code, out, err)

    return invoke


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Background processes a test started; any still alive at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
