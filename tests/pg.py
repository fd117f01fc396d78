"""PostgreSQL for the tests: one server per session, a fresh database per test.

The server is $PG_TEST_URL (a URL to a database whose user may CREATE DATABASE) if set,
else a throwaway cluster of our own (tests/support/pgcluster.py) when the server's binaries
are on this machine. Without either, every PostgreSQL test is skipped and says why; with
PG_TESTS_REQUIRED=1 (CI) a missing server fails them instead: CI never skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.pgcluster import Cluster, find_bindir
from tests.support.pgpool import PgPool

TEMPLATE = "operator_test_template"


def _unavailable(reason: str) -> None:
    if os.environ.get("PG_TESTS_REQUIRED") == "1":
        pytest.fail(f"PostgreSQL is required here (PG_TESTS_REQUIRED=1): {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@dataclass
class PgServer:
    """The session's server: ``admin_url`` reaches a maintenance database; ``cluster`` is
    ours to restart, or None for an external $PG_TEST_URL."""

    admin_url: str
    cluster: Cluster | None

    def url(self, dbname: str) -> str:
        return _with_db(self.admin_url, dbname)

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_db(self, template: str) -> str:
        name = f"operator_test_{uuid.uuid4().hex[:12]}"
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_db(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str) -> None:
    import asyncio

    from operator_core.db.pg.connection import PgDatabase

    async def go() -> None:
        db = PgDatabase(url)
        try:
            await db.open()
        finally:
            await db.close()

    asyncio.run(go())


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed")
    external = os.environ.get("PG_TEST_URL")
    cluster: Cluster | None = None
    if external:
        server = PgServer(external, None)
    else:
        bindir = find_bindir()
        if bindir is None:
            _unavailable(
                "no PostgreSQL server binaries (initdb not on PATH nor in "
                "/usr/lib/postgresql/*/bin) and PG_TEST_URL is not set"
            )
            raise AssertionError("unreachable")
        try:
            cluster = Cluster(bindir).start()
        except (OSError, RuntimeError) as exc:
            _unavailable(f"could not start a throwaway cluster: {exc}")
        assert cluster is not None
        server = PgServer(cluster.url("postgres"), cluster)
    server.drop_db(TEMPLATE)
    server.admin(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0')
    _migrate(server.url(TEMPLATE))
    try:
        yield server
    finally:
        if cluster is not None:
            cluster.stop()
        else:
            server.drop_db(TEMPLATE)


def _fresh(server: PgServer, template: str) -> Iterator[str]:
    name = server.create_db(template)
    try:
        yield server.url(name)
    finally:
        server.drop_db(name)


@pytest.fixture(scope="session")
def pg_pool(pg_server: PgServer) -> Iterator[PgPool]:
    """The session's reusable migrated databases (tests/support/pgpool.py)."""
    pool = PgPool(TEMPLATE, pg_server.url, pg_server.create_db, pg_server.drop_db)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def pg_url(pg_server: PgServer, pg_pool: PgPool) -> Iterator[str]:
    """A migrated Operator database of its own, in the state of a fresh copy of the
    session's template (a pooled one, reset after the test)."""
    name = pg_pool.acquire()
    try:
        yield pg_server.url(name)
    finally:
        pg_pool.release(name)


@pytest.fixture
def pg_empty_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database (no Operator schema yet)."""
    yield from _fresh(pg_server, "template0")
