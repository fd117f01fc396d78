"""``operator migrate`` on a SQLite file and on a PostgreSQL URL, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
from operator_core.db.pg import schema as pg_schema
from operator_core.db.schema import LATEST_VERSION

from tests.e2e.conftest import cli_env


def _operator(tmp_path: Path, db: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "operator_core.cli", "--db", db, *args],
        env=cli_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(tmp_path: Path, db: str, *args: str) -> tuple[int, str, str]:
    proc = _operator(tmp_path, db, *args)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def _password(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url).get("password") or "\x00none"


def test_migrate_a_sqlite_file(tmp_path: Path) -> None:
    db = str(tmp_path / "ops.db")
    assert _run(tmp_path, db, "migrate") == (
        0,
        f"{db}: schema version {LATEST_VERSION} (created)\n",
        "",
    )
    code, out, _ = _run(tmp_path, db, "migrate")
    assert (code, out) == (0, f"{db}: schema version {LATEST_VERSION} (already current)\n")
    code, out, _ = _run(tmp_path, db, "actions", "list")
    assert code == 0


def test_hosts_migrating_at_once_make_one_schema(tmp_path: Path, pg_empty_url: str) -> None:
    procs = [_operator(tmp_path, pg_empty_url, "migrate") for _ in range(3)]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert _password(pg_empty_url) not in out + err
        outs.append(out)
    version = pg_schema.LATEST_VERSION
    assert sum("(created)" in out for out in outs) >= 1
    assert all(":***@" in out and f"schema version {version} (" in out for out in outs)
    with psycopg.connect(pg_empty_url) as conn:
        assert conn.execute("SELECT version FROM operator_schema").fetchall() == [(version,)]
        assert conn.execute("SELECT count(*) FROM audit_origin").fetchone() == (1,)


def test_refusals_on_postgres_are_one_line_without_the_password(
    tmp_path: Path, pg_url: str
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE operator_schema SET version = 99")
    code, out, err = _run(tmp_path, pg_url, "migrate")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "newer than this Operator understands" in err
    code, out, err = _run(tmp_path, pg_url, "demo")
    assert code == 1 and out == ""
    assert err.startswith("operator: 'operator demo' runs only on a SQLite file")
    assert err.count("\n") == 1
    for text in (out, err):
        assert _password(pg_url) not in text
    assert not list(tmp_path.glob("postgres*"))  # no file made from the URL
