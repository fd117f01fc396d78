"""``operator tui`` and ``operator demo`` on a PostgreSQL URL through the real CLI: what
cannot open says so in one line with the password hidden and writes nothing; the demo is
refused in one line (it would approve and run a shared database's real work)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from operator_core.db.url import passwords, redact

from tests.e2e.conftest import cli_env
from tests.e2e.test_tui_cli import Terminal


def _operator(tmp_path: Path, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", db, *args],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]


def _one_line(done: subprocess.CompletedProcess[str], url: str) -> str:
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("operator: ") and done.stderr.count("\n") == 1, done.stderr
    assert all(p not in done.stderr for p in passwords(url))
    return done.stderr


def test_tui_opens_a_postgresql_database_and_a_approves_through_it(
    tmp_path: Path, pg_url: str
) -> None:
    """The real command in a pseudo-terminal: the header shows the URL with its password
    hidden, and ``a`` approves the proposal in the database."""
    made = _operator(
        tmp_path,
        pg_url,
        *("--subject", "demo", "--approval-mode", "on", "propose", "check_health"),
        *("--reason", "look"),
    )
    assert made.returncode == 0, made.stderr
    term = Terminal(pg_url, "demo", state=tmp_path)
    try:
        term.wait_for("Approvals · 1")
        term.wait_for(redact(pg_url).split("@", 1)[1])  # the host and database, in the header
        term.press("a")
        term.wait_for("Approvals · 0")
        assert term.quit() == 0
    finally:
        term.kill()
    text = term.output.decode(errors="replace")
    assert "Traceback" not in text
    assert all(p not in text for p in passwords(pg_url))
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT approved_by FROM action_proposals WHERE id = 1").fetchone()
    assert row is not None and row[0] is not None


def test_tui_on_a_database_without_operators_schema_says_so_and_creates_nothing(
    tmp_path: Path, pg_empty_url: str
) -> None:
    said = _one_line(_operator(tmp_path, pg_empty_url, "tui"), pg_empty_url)
    assert f"no Operator database at {redact(pg_empty_url)}" in said
    assert _tables(pg_empty_url) == []


def test_tui_with_a_wrong_password_says_so_without_it(tmp_path: Path, pg_url: str) -> None:
    parts = urlsplit(pg_url)
    assert parts.password
    wrong = urlunsplit(
        parts._replace(
            netloc=f"{parts.username}:not-{parts.password}@{parts.hostname}:{parts.port}"
        )
    )
    said = _one_line(_operator(tmp_path, wrong, "tui"), wrong)
    assert "password authentication failed" in said


def test_demo_is_refused_on_postgresql_and_writes_nothing(tmp_path: Path, pg_url: str) -> None:
    for args in (("demo", "--headless", "--duration", "1"), ("demo", "--reset")):
        said = _one_line(_operator(tmp_path, pg_url, *args), pg_url)
        assert said.startswith("operator: 'operator demo' runs only on a SQLite file")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM action_audit_log").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM action_proposals").fetchone() == (0,)
