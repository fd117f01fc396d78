"""``operator copy`` end to end: a SQLite database filled by a real session (the CLI's own
commands, a real runner run, a workflow, a ticket, an automation execution, the kill switch
engaged and resumed) copied into PostgreSQL: every table equal row for row, the audit chain
verifying, the source untouched, and the copy working on (new ids past the copied ones, the
chain still whole). A runner live on the source is refused."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from operator_core.db import audit
from operator_core.db.pg.connection import PgDatabase
from operator_core.db.pg.transfer import TABLES

from tests.e2e.conftest import assert_one_line_error, cli_env, start_runner, wait_for
from tests.e2e.test_runner_processes import started, stop

AUTOMATION = {
    "name": "probe",
    "description": "look at a new incident",
    "nodes": [
        {"id": "t", "type": "trigger", "data": {}},
        {"id": "a", "type": "action", "data": {"action": "check_health"}},
    ],
    "edges": [{"id": "e0", "source": "t", "target": "a"}],
    "trigger": {"type": "incident_created"},
    "settings": {"timeout": "15min", "enabled": True},
}

ON = ("--approval-mode", "on")
SESSION: list[tuple[str, ...]] = [
    (*ON, "propose", "restart_store", "--param", "store_id=s2", "--reason", "50% ?"),
    (*ON, "propose", "check_health", "--reason", "look"),
    (*ON, "propose", "check_health", "--reason", "again"),
    (*ON, "approve", "1"),
    ("reject", "2", "--reason", "not now"),
    ("cancel", "3", "--reason", "dup"),
    (*ON, "propose-workflow", "evac", "--description", "drain s3", "--step", "check_health")
    + ("--step", "drain_store store_id=s3"),
    (*ON, "approve", "1", "--workflow"),
    # drain_store's budget is 2 an hour: with the workflow's drain, this one waits (budget_waits).
    (*ON, "propose", "drain_store", "--param", "store_id=s4", "--reason", "b1"),
    (*ON, "propose", "drain_store", "--param", "store_id=s5", "--reason", "b2"),
    (*ON, "approve", "6"),
    (*ON, "approve", "7"),
    ("agents", "set", "bot", "--max-proposals", "5", "--per", "1h", "--allow", "check_health"),
    ("automations", "apply", "{automation}"),
    ("ticket", "open", "Disk errors on s3", "--severity", "high"),  # starts the automation
    ("ticket", "ack", "1"),
    (*ON, "run", "--until-idle", "--concurrency", "1"),
    ("kill-switch", "--yes"),  # cancels what waits (the budgeted drain, the automation's)
    ("resume", "--yes"),
    ("ticket", "resolve", "1"),
]


def _env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path, OPERATOR_DEMO_SPEED="1000", OPERATOR_DEMO_FAILURE_RATE="0")


def operator(tmp_path: Path, *args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    head = [sys.executable, "-m", "operator_core.cli", "--subject", "demo"]
    if db is not None:
        head += ["--db", db]
    return subprocess.run(
        [*head, *args], env=_env(tmp_path), capture_output=True, text=True, timeout=120
    )


def fill(tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SESSION through the CLI's own entry point, in this process (a start-up each would
    take minutes on a loaded machine); the files and the engine are the real ones."""
    from operator_core.cli import main

    spec = tmp_path / "probe.json"
    spec.write_text(json.dumps(AUTOMATION))
    for key in [k for k in os.environ if k.startswith("OPERATOR_")]:
        monkeypatch.delenv(key)
    for key, value in _env(tmp_path).items():
        if key.startswith(("OPERATOR_", "XDG_")):
            monkeypatch.setenv(key, value)
    for args in SESSION:
        argv = ["--db", str(db), "--subject", "demo", *args]
        argv = [a.replace("{automation}", str(spec)) for a in argv]
        assert main(argv) == 0, argv


def sqlite_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql)]  # type: ignore[arg-type]


def normal(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # Integers and floats compare by value (SQLite's REAL 0.0 may be PostgreSQL's 0.0 or 0).
    return [tuple(float(v) if isinstance(v, int | float) else v for v in row) for row in rows]


def verify(url: str) -> tuple[bool, int, str]:
    async def go() -> tuple[bool, int, str]:
        db = PgDatabase(url)
        try:
            return await db.read(audit.verify_chain)
        finally:
            await db.close()

    return asyncio.run(go())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()  # the database file's bytes


def test_a_real_session_copies_whole_and_works_on(
    tmp_path: Path, pg_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "ops.db"
    fill(tmp_path, src, monkeypatch)
    for table in TABLES:  # the session wrote something in every table
        assert sqlite_rows(src, table.select), table.name
    before = digest(src)

    done = operator(tmp_path, "copy", "--from", str(src), "--to", pg_empty_url, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert digest(src) == before  # never written, never migrated
    assert "Traceback" not in done.stderr
    assert summary["triggers"] == "session_replication_role"  # the test server's superuser
    assert f"copy: action_audit_log: {summary['tables']['action_audit_log']['rows']} rows" in (
        done.stderr
    )

    for table in TABLES:
        theirs, ours = sqlite_rows(src, table.select), pg_rows(pg_empty_url, table.select)
        assert normal(ours) == normal(theirs), table.name
        assert summary["tables"][table.name]["rows"] == len(theirs)
    events = len(sqlite_rows(src, "SELECT id FROM action_audit_log"))
    assert pg_rows(pg_empty_url, "SELECT last_id FROM audit_sequence") == [(events,)]
    assert verify(pg_empty_url) == (True, events, f"{events} events, chain intact")
    assert summary["audit"].pop("seconds") >= 0
    assert summary["audit"] == {
        "ok": True,
        "events": events,
        "message": f"{events} events, chain intact",
    }
    modes = pg_rows(pg_empty_url, "SELECT mode, changed_by FROM safety_state")
    assert modes == sqlite_rows(src, "SELECT mode, changed_by FROM safety_state")

    # The copy works on: a proposal gets the next id, runs, and the chain still verifies.
    proposals = len(sqlite_rows(src, "SELECT id FROM action_proposals"))
    url = pg_empty_url
    made = operator(tmp_path, "propose", "check_health", "--reason", "after the move", db=url)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == str(proposals + 1)
    assert operator(tmp_path, "approve", str(proposals + 1), db=url).returncode == 0
    ran = operator(tmp_path, "run", "--until-idle", "--concurrency", "1", db=url)
    assert ran.returncode == 0, ran.stderr
    status = pg_rows(url, f"SELECT status FROM action_proposals WHERE id = {proposals + 1}")
    assert status == [("completed",)]
    records = sqlite_rows(src, "SELECT MAX(id) FROM action_records")[0][0]
    new_records = pg_rows(url, f"SELECT id FROM action_records WHERE proposal_id = {proposals + 1}")
    assert new_records == [(records + 1,)]
    ok, count, message = verify(url)
    assert ok and count > events, message
    tickets = operator(tmp_path, "ticket", "open", "after", db=url)
    assert tickets.stdout.strip() == "2", tickets.stderr


def test_a_runner_live_on_the_source_is_refused(
    tmp_path: Path, pg_url: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    src = tmp_path / "ops.db"
    log = tmp_path / "runner.log"
    procs.append(start_runner(src, log, env=_env(tmp_path)))
    wait_for(lambda: started(log), 30, what="the runner to start")
    done = operator(tmp_path, "copy", "--from", str(src), "--to", pg_url)
    line = assert_one_line_error(done)
    assert "runner(s) live on" in line and "stop them before copying" in line
    assert pg_rows(pg_url, "SELECT COUNT(*) FROM action_proposals") == [(0,)]
    assert stop(procs[0]) == 0  # stopped: its heartbeat row says so, and the copy goes
    again = operator(tmp_path, "copy", "--from", str(src), "--to", pg_url)
    assert again.returncode == 0, again.stderr
    assert pg_rows(pg_url, "SELECT COUNT(*) FROM runners WHERE stopped_at IS NOT NULL") == [(1,)]
