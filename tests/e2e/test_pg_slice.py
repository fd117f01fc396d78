"""The first commands on PostgreSQL (issue 26's first slice) through the real CLI: the same
session (propose, approve, reject, cancel, a workflow, a ticket, the runner) on a SQLite
file and on PostgreSQL ends in the same actions, workflows, tickets and audit events, and
the PostgreSQL audit chain verifies."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from operator_core.db import audit
from operator_core.db.pg.connection import PgDatabase

from tests.e2e.conftest import cli_env

# What differs between two runs whatever the engine: times and who ran them.
_VOLATILE = ("_at", "_identity", "_by", "note")

ON = ("--approval-mode", "on")
SESSION: list[tuple[tuple[str, ...], str]] = [
    # (arguments, what stdout starts with)
    ((*ON, "propose", "restart_store", "--param", "store_id=s2", "--reason", "50% ?"), "1"),
    ((*ON, "propose", "check_health", "--reason", "look"), "2"),
    ((*ON, "propose", "check_health", "--reason", "again"), "3"),
    (("actions", "list"), "ID\tACTION"),
    ((*ON, "approve", "1"), "action 1 approved by "),
    (("reject", "2", "--reason", "not now"), "action 2 rejected by "),
    (("cancel", "3", "--reason", "dup"), "action 3 cancelled by "),
    (
        (*ON, "propose-workflow", "evac", "--description", "drain s3", "--step", "check_health")
        + ("--step", "drain_store store_id=s3"),
        "1",
    ),
    (("workflows", "show", "1"), "workflow 1: evac"),
    ((*ON, "approve", "1", "--workflow"), "workflow 1 approved by "),
    (("ticket", "open", "Disk errors on s3", "--severity", "high"), "1"),
    (("ticket", "ack", "1"), "ticket 1 acknowledged by "),
    (("ticket", "resolve", "1"), "ticket 1 resolved by "),
    # drain_store has an execution budget of 2 per hour: with the workflow's own drain, one
    # of these waits approved, on both engines.
    ((*ON, "propose", "drain_store", "--param", "store_id=s4", "--reason", "b1"), "6"),
    ((*ON, "propose", "drain_store", "--param", "store_id=s5", "--reason", "b2"), "7"),
    ((*ON, "approve", "6"), "action 6 approved by "),
    ((*ON, "approve", "7"), "action 7 approved by "),
    (("actions", "show", "1"), "action 1: restart_store"),
    (("policy", "show"), "approval-mode on"),
    # The runner runs what was approved (action 1 and the workflow's two steps), then stops;
    # one at a time, so the audit events come in one order on both engines.
    (("run", "--until-idle", "--concurrency", "1"), ""),
]
# The audit trail's steady part (both engines wrote it; ids and types in order).
_EVENTS_SQL = "SELECT id, proposal_id, workflow_id, event_type FROM action_audit_log ORDER BY id"
LISTINGS = [("actions", "list"), ("workflows", "list"), ("ticket", "list"), ("status",)]


def _operator(tmp_path: Path, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", db, "--subject", "demo", *args],
        env=cli_env(tmp_path, OPERATOR_DEMO_SPEED="1000", OPERATOR_DEMO_FAILURE_RATE="0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if not k.endswith(_VOLATILE) and k != "db"}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


def _session(tmp_path: Path, db: str) -> list[Any]:
    """Run SESSION; then every listing as JSON, without its times and identities."""
    for args, expected in SESSION:
        done = _operator(tmp_path, db, *args)
        assert done.returncode == 0, (args, done.stderr)
        if args[0] != "run":  # the runner logs what it ran on stderr
            assert done.stderr == "", (args, done.stderr)
        assert done.stdout.startswith(expected), (args, done.stdout)
    listings = []
    for args in LISTINGS:
        done = _operator(tmp_path, db, *args, "--json")
        assert done.returncode == 0, (args, done.stderr)
        listings.append(_steady(json.loads(done.stdout)))
    return listings


def test_the_first_commands_do_on_postgres_what_they_do_on_sqlite(
    tmp_path: Path, pg_url: str
) -> None:
    on_sqlite = _session(tmp_path, str(tmp_path / "ops.db"))
    on_postgres = _session(tmp_path, pg_url)
    assert on_postgres == on_sqlite
    actions, workflows, tickets, status = on_postgres
    assert len(actions) == 7 and len(workflows) == 1 and len(tickets) == 1
    assert tickets[0]["status"] == "resolved"
    drains = sorted((a["id"], a["status"]) for a in actions if a["action_name"] == "drain_store")
    assert drains == [(5, "completed"), (6, "completed"), (7, "validated")]
    assert status["by_status"] == {"cancelled": 2, "completed": 4, "validated": 1}
    assert [(b["action"], b["used"], b["runs"]) for b in status["budgets_spent"]] == [
        ("drain_store", 2, 2)
    ]
    assert workflows[0]["status"] == "completed"

    async def chain() -> tuple[tuple[bool, int, str], list[tuple[Any, ...]]]:
        db = PgDatabase(pg_url)
        try:
            return await db.read(audit.verify_chain), await db.read(
                lambda c: [tuple(r) for r in c.execute(_EVENTS_SQL)]
            )
        finally:
            await db.close()

    (ok, count, message), events = asyncio.run(chain())
    with sqlite3.connect(tmp_path / "ops.db") as conn:
        assert events == conn.execute(_EVENTS_SQL).fetchall()  # the same events, in order
    assert ok and count == len(events) > len(SESSION) - 3, message
    password = psycopg.conninfo.conninfo_to_dict(pg_url).get("password")
    assert not list(tmp_path.glob("postgres*"))  # no file made from the URL
    assert not password or all(password not in p.name for p in tmp_path.rglob("*"))


def test_every_command_but_demo_runs_on_postgres() -> None:
    import typer.main
    from operator_core.cli.app import POSTGRES_COMMANDS
    from operator_core.cli.typer_main import app

    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert commands - set(POSTGRES_COMMANDS) == {"demo"}
    assert set(POSTGRES_COMMANDS) <= commands


def test_demo_refuses_a_url_in_one_line(tmp_path: Path, pg_url: str) -> None:
    done = _operator(tmp_path, pg_url, "demo")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("operator: 'operator demo' runs only on a SQLite file")
    assert done.stderr.count("\n") == 1
