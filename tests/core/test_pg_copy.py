"""``operator copy``'s rules: every table of both schemas handled; the target migrated and
filled in one transaction (a failure midway leaves it as it was, schema included); what it
refuses, in one line, changing nothing; triggers off for the copy even for a role that may
not set session_replication_role."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from operator_core.db import schema as sqlite_schema
from operator_core.db.pg import schema as pg_schema
from operator_core.db.pg import transfer
from operator_core.db.pg.rows import PgConn
from operator_core.db.schema import MIGRATIONS

from tests.e2e.conftest import assert_one_line_error
from tests.pg import PgServer

CLI = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CLI:
    """The CLI's own ``main`` in this process, in a clean environment."""
    from operator_core.cli import main

    for key in [k for k in os.environ if k.startswith("OPERATOR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("OPERATOR_DEMO_SPEED", "1000")

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code = main(["--subject", "demo", *args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return invoke


def sql(url: str, text: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(text, params)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []


def everything(url: str) -> list[Any]:
    """Every table's rows, and the schema: 'left as it was' compares these."""
    tables = [r[0] for r in sql(url, pg_schema.TABLES_SQL.replace("LIMIT 6", ""))]
    return [(t, sorted(map(repr, sql(url, f'SELECT * FROM "{t}"')))) for t in tables]


def source(tmp_path: Path, cli: CLI, name: str = "ops.db") -> Path:
    path = tmp_path / name
    for args in (("propose", "check_health", "--reason", "one"), ("ticket", "open", "disk")):
        done = cli("--db", str(path), *args)
        assert done.returncode == 0, done.stderr
    return path


def files(path: Path) -> str:
    # The database file's bytes (a read-only reader of a WAL database may leave SQLite's
    # own -shm and an empty -wal beside it, as every reading command does).
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_table_of_both_schemas_is_copied(tmp_path: Path, pg_url: str) -> None:
    """A table added to either schema and not to transfer.TABLES fails here."""
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    sqlite_schema.migrate(conn)
    in_sqlite = {
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if r[0] != "sqlite_sequence"
    }
    in_pg = {r[0] for r in sql(pg_url, pg_schema.TABLES_SQL.replace("LIMIT 6", ""))}
    copied = [t.name for t in transfer.TABLES]
    assert len(copied) == len(set(copied))
    assert set(copied) == in_sqlite == in_pg - set(transfer.TARGET_ONLY)
    seeds = {"safety_state", "policy", "audit_origin"}
    for name in set(copied) - seeds:  # a target holding any row of them is refused
        assert f"FROM {name})" in transfer.HOLDS_ROWS_SQL, name
    for name in seeds:
        assert f"DELETE FROM {name}" in transfer.CLEAR_SEEDS_SQL
    for table in transfer.TABLES:  # same columns in the same order: COPY takes them so
        theirs = [r[1] for r in conn.execute(f"PRAGMA table_info({table.name})")]
        ours = [r[0] for r in sql(pg_url, transfer.TARGET_COLUMNS_SQL, (table.name,))]
        assert theirs == ours, table.name
        identity = sql(
            pg_url,
            "SELECT is_identity FROM information_schema.columns "
            "WHERE table_name = %s AND column_name = 'id'",
            (table.name,),
        )
        assert table.identity == (identity == [("YES",)]), table.name


def test_only_the_known_triggers_fire_on_insert(pg_url: str) -> None:
    """The append-only, ticket-event, updated_at and proposal-end triggers fire on UPDATE,
    DELETE or TRUNCATE only: a copy's inserts never meet them (they are off anyway)."""
    on_insert = sql(
        pg_url,
        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal AND t.tgtype & 4 <> 0",  # 4: TRIGGER_TYPE_INSERT
    )
    assert set(on_insert) == transfer.INSERT_TRIGGERS
    every = sql(pg_url, "SELECT COUNT(*) FROM pg_trigger WHERE NOT tgisinternal")[0][0]
    assert every > len(on_insert) + 8  # the others exist: the filter is not vacuous


def test_a_failure_midway_leaves_the_target_as_it_was(
    tmp_path: Path, cli: CLI, pg_url: str, pg_empty_url: str
) -> None:
    """A row PostgreSQL refuses (a NUL in a text, which SQLite stores) in the last tables:
    everything before it was written in the same transaction, and is gone with it."""
    src = source(tmp_path, cli)
    with sqlite3.connect(src) as conn:
        conn.execute(
            "INSERT INTO agent_budgets (agent, set_at, set_by) VALUES ('bot', 'now', ?)",
            ("a\x00b",),
        )
    before_migrated, before_empty = everything(pg_url), everything(pg_empty_url)
    assert before_empty == []
    for url in (pg_url, pg_empty_url):
        done = cli("copy", "--from", str(src), "--to", url)
        assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
        *progress, line = done.stderr.splitlines()
        assert any(p.startswith("copy: action_audit_log: 3 rows") for p in progress)
        assert all(p.startswith("copy: ") for p in progress), progress
        assert line.startswith("operator: database error on postgresql://"), line
        assert "nothing was written" in line and "0x00" in line, line
    assert everything(pg_url) == before_migrated
    assert everything(pg_empty_url) == []  # not even the schema the copy made first


def test_a_target_holding_operator_rows_is_refused_and_unchanged(
    tmp_path: Path, cli: CLI, pg_url: str
) -> None:
    src = source(tmp_path, cli)
    assert cli("--db", pg_url, "ticket", "open", "theirs").returncode == 0
    before = everything(pg_url)
    line = assert_one_line_error(cli("copy", "--from", str(src), "--to", pg_url))
    assert line.startswith("operator: postgresql://")
    assert "already holds Operator rows" in line
    assert everything(pg_url) == before


def test_an_older_operator_database_is_migrated_in_the_copy_and_a_newer_refused(
    tmp_path: Path, cli: CLI, pg_empty_url: str, pg_url: str
) -> None:
    src = source(tmp_path, cli)
    with psycopg.connect(pg_empty_url, autocommit=True) as raw:
        conn = PgConn(raw)
        raw.execute("BEGIN")
        pg_schema._create(conn, "old")  # the baseline, version 12, empty
        conn.execute(pg_schema.SET_VERSION_SQL, (pg_schema.BASELINE_VERSION,))
        raw.execute("COMMIT")
    done = cli("copy", "--from", str(src), "--to", pg_empty_url)
    assert done.returncode == 0, done.stderr
    assert sql(pg_empty_url, "SELECT version FROM operator_schema") == [(pg_schema.LATEST_VERSION,)]
    assert sql(pg_empty_url, "SELECT COUNT(*) FROM action_proposals") == [(1,)]
    sql(pg_url, "UPDATE operator_schema SET version = 99")
    before = everything(pg_url)
    line = assert_one_line_error(cli("copy", "--from", str(src), "--to", pg_url))
    assert "schema version 99, newer than this Operator" in line
    assert everything(pg_url) == before


def test_a_database_of_something_else_is_refused(
    tmp_path: Path, cli: CLI, pg_empty_url: str
) -> None:
    src = source(tmp_path, cli)
    sql(pg_empty_url, "CREATE TABLE orders (id int)")
    line = assert_one_line_error(cli("copy", "--from", str(src), "--to", pg_empty_url))
    assert "holds tables of something else (orders)" in line


def test_sources_it_cannot_copy_are_refused_and_untouched(
    tmp_path: Path, cli: CLI, pg_url: str
) -> None:
    older = tmp_path / "older.db"
    conn = sqlite3.connect(older, isolation_level=None)
    for step in MIGRATIONS[:-1]:
        step(conn)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    conn.close()
    newer = source(tmp_path, cli, "newer.db")
    conn = sqlite3.connect(newer, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {sqlite_schema.LATEST_VERSION + 1}")
    conn.close()  # the WAL folded back: the files stay as they are now
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 200)
    before = {p: files(p) for p in (older, newer, junk)}
    expected = {
        older: f"run 'operator migrate --db {older}' first (copy never writes its source)",
        newer: "newer than this Operator understands",
        junk: f"cannot read {junk}: file is not a database",
        tmp_path / "missing.db": "nothing to copy",
        tmp_path / ("x" * 300): "cannot open",  # a name too long for the file system
    }
    for path, words in expected.items():
        line = assert_one_line_error(cli("copy", "--from", str(path), "--to", pg_url))
        assert words in line, line
    assert {p: files(p) for p in before} == before
    assert not (tmp_path / "missing.db").exists()
    assert sql(pg_url, "SELECT COUNT(*) FROM action_audit_log") == [(0,)]


def test_bad_urls_and_bad_arguments_are_one_line_without_the_password(
    tmp_path: Path, cli: CLI, pg_server: PgServer
) -> None:
    src = source(tmp_path, cli)
    wrong = pg_server.url("postgres").replace("@", "x@").replace(":", ":", 1)
    user, _, rest = wrong.partition("@")
    wrong = user.rsplit(":", 1)[0] + ":hunter2secret@" + rest
    cases = {
        wrong: "password authentication failed",
        "postgresql://u:hunter2secret@127.0.0.1:1/x": "cannot connect to PostgreSQL",
    }
    for url, words in cases.items():
        done = cli("copy", "--from", str(src), "--to", url)
        line = assert_one_line_error(done)
        assert words in line and "***" in line, line
        assert "hunter2secret" not in done.stderr + done.stdout
    for args, words in (
        (("--to", str(tmp_path / "other.db")), "--to must be a postgresql:// URL"),
        (("--to", "postgresql://h/db", "--from", "postgresql://h/x"), "--from must be a SQLite"),
    ):
        argv = ("--from", str(src), *args) if "--from" not in args else args
        assert words in assert_one_line_error(cli("copy", *argv))


def test_a_role_that_may_not_set_replica_copies_as_the_tables_owner(
    tmp_path: Path, cli: CLI, pg_server: PgServer
) -> None:
    """Not a superuser: the triggers are disabled as their owner, in the transaction, and
    on again after it."""
    src = source(tmp_path, cli)
    role = f"copier_{uuid.uuid4().hex[:8]}"
    name = f"operator_test_{uuid.uuid4().hex[:12]}"
    pg_server.admin(f"CREATE ROLE {role} LOGIN PASSWORD 'pw{role}'")
    pg_server.admin(f'CREATE DATABASE "{name}" OWNER {role} TEMPLATE template0')
    try:
        admin = pg_server.url(name)
        url = admin.replace(admin.split("@")[0], f"postgresql://{role}:pw{role}")
        done = cli("copy", "--from", str(src), "--to", url, "--json")
        assert done.returncode == 0, done.stderr
        assert '"triggers": "disabled as owner"' in done.stdout
        off = sql(
            admin, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'O'"
        )
        assert off == []
        assert sql(admin, "SELECT COUNT(*) FROM action_audit_log")[0][0] > 0
        assert sql(admin, "SELECT last_id FROM audit_sequence") == sql(
            admin, "SELECT MAX(id) FROM action_audit_log"
        )
    finally:
        pg_server.drop_db(name)
        pg_server.admin(f"DROP ROLE IF EXISTS {role}")
