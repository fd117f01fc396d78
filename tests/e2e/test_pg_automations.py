"""Automations on PostgreSQL through the real CLI: the same session (apply two versions,
diff, roll back, ticket events that start executions, a real runner walking their steps
while a person approves and rejects, a manual start) on a SQLite file and on PostgreSQL
ends in the same automations, versions, executions, actions and audit events."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from operator_core.db import audit
from operator_core.db.pg.connection import PgDatabase

from tests.automations.helpers import action, linear
from tests.e2e.conftest import SUBJECT, cli_env, wait_for
from tests.e2e.test_runner_processes import started, stop

# What differs between two runs whatever the engine: times and who ran them.
_VOLATILE = ("_at", "_identity", "_by", "note")

ON = ("--approval-mode", "on")
V1 = linear(action("h", "check_health"), name="esc", trigger={"type": "escalation"})
V2 = linear(
    action("h", "check_health"),
    action("d", "drain_store", parameters={"store_id": "s1"}),
    name="esc",
    trigger={"type": "escalation"},
)
# The audit trail's steady part (both engines wrote it; ids and types in order).
_EVENTS_SQL = "SELECT id, proposal_id, workflow_id, event_type FROM action_audit_log ORDER BY id"
# The proposal-end trigger: when an execution's proposal ends for good (here: rejected,
# so cancelled) the execution is due at the proposal's end, before any runner looks at it.
_WAKE_SQL = """
SELECT e.id, e.status, p.status, CASE WHEN e.next_wake_at = p.finished_at THEN 1 ELSE 0 END
FROM automation_executions AS e JOIN action_proposals AS p ON p.automation_execution_id = e.id
WHERE p.id = 3
"""
REJECT = ("reject", "3", "--reason", "not now")
LISTINGS = [
    ("automations", "list"),
    ("automations", "history", "esc"),
    ("automations", "show", "esc"),
    ("automations", "executions"),
    ("automations", "execution", "1"),
    ("automations", "execution", "2"),
    ("actions", "list"),
    ("ticket", "list"),
]


def _operator(tmp_path: Path, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", db, "--subject", "demo", *args],
        env=cli_env(tmp_path, OPERATOR_DEMO_SPEED="1000", OPERATOR_DEMO_FAILURE_RATE="0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _session_steps(tmp_path: Path) -> list[tuple[tuple[str, ...], str]]:
    v1, v2 = tmp_path / "esc-v1.json", tmp_path / "esc-v2.json"
    v1.write_text(json.dumps(V1))
    v2.write_text(json.dumps(V2))
    run = ("run", "--until-idle", "--concurrency", "1")
    return [
        # (arguments, what stdout starts with)
        (("policy", "set", "approval-mode", "on"), "approval-mode on"),
        ((*ON, "automations", "apply", str(v1)), "created automation esc version 1"),
        ((*ON, "automations", "apply", str(v2), "--note", "drain too"), "esc: version 2"),
        (("automations", "diff", "esc", "1", "2"), "--- esc v1"),
        (("ticket", "open", "api down", "--severity", "low"), "1"),
        # An escalation event starts execution 1 (version 2); the runner proposes its first
        # step, which waits for a person.
        (("ticket", "escalate", "1"), "ticket 1 escalated by "),
        (run, ""),
        ((*ON, "approve", "1"), "action 1 approved by "),
        # The action ends: the proposal-end trigger wakes the execution, which proposes the
        # drain; approved and run, the execution completes.
        (run, ""),
        ((*ON, "approve", "2"), "action 2 approved by "),
        (run, ""),
        (("automations", "disable", "esc"), "esc disabled"),
        (("ticket", "escalate", "1"), "ticket 1 escalated by "),  # disabled: no execution
        (("automations", "enable", "esc"), "esc enabled"),
        # By hand this time; its first step is rejected, so the execution fails.
        ((*ON, "automations", "run", "esc", "--ticket", "1"), "execution 2: esc v2 on ticket 1"),
        (run, ""),
        (REJECT, "action 3 rejected by "),
        (run, ""),
        ((*ON, "automations", "rollback", "esc", "--to", "1"), "esc: version 3"),
    ]


def _steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if not k.endswith(_VOLATILE) and k != "db"}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


def _session(tmp_path: Path, db: str, rows: Callable[[str], list[Any]]) -> list[Any]:
    """Run the session; then every listing as JSON, without its times and identities."""
    for args, expected in _session_steps(tmp_path):
        done = _operator(tmp_path, db, *args)
        assert done.returncode == 0, (args, done.stderr)
        if args[0] != "run":  # the runner logs what it ran on stderr
            assert done.stderr == "", (args, done.stderr)
        assert done.stdout.startswith(expected), (args, done.stdout)
        if args == REJECT:
            assert rows(_WAKE_SQL) == [(2, "RUNNING", "cancelled", 1)]
    listings = []
    for args in LISTINGS:
        done = _operator(tmp_path, db, *args, "--json")
        assert done.returncode == 0, (args, done.stderr)
        listings.append(_steady(json.loads(done.stdout)))
    return listings


def _sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return [tuple(r) for r in conn.execute(sql)]


def _pg_rows(url: str, *sqls: str) -> list[list[tuple[Any, ...]]]:
    async def go() -> list[list[tuple[Any, ...]]]:
        db = PgDatabase(url)
        try:
            out = []
            for sql in sqls:
                out.append(await db.read(lambda c, sql=sql: [tuple(r) for r in c.execute(sql)]))
            return out
        finally:
            await db.close()

    return asyncio.run(go())


# About 70 interpreter starts (the session twice, its listings): no race, only their cost,
# which passed pytest's 120 s default on this 2-core machine at a load average of 10.
@pytest.mark.timeout(360)
def test_automations_do_on_postgres_what_they_do_on_sqlite(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "ops.db"
    on_sqlite = _session(tmp_path, str(path), lambda sql: _sqlite_rows(path, sql))
    on_postgres = _session(tmp_path, pg_url, lambda sql: _pg_rows(pg_url, sql)[0])
    assert on_postgres == on_sqlite
    autos, history, _shown, runs, first, second, actions, _tickets = on_postgres
    assert [(a["name"], a["version"], a["enabled"]) for a in autos] == [("esc", 3, True)]
    assert [v["version"] for v in history] == [1, 2, 3]
    assert [(r["id"], r["version"], r["status"], r["trigger"]) for r in runs] == [
        (2, 2, "FAILED", "manual"),
        (1, 2, "COMPLETED", "escalation"),
    ]
    assert sorted(first["completed_nodes"]) == ["d", "h", "t"]
    assert second["status"] == "FAILED"
    assert [(a["id"], a["action_name"], a["status"]) for a in actions] == [
        (3, "check_health", "cancelled"),
        (2, "drain_store", "completed"),
        (1, "check_health", "completed"),
    ]

    [events] = _pg_rows(pg_url, _EVENTS_SQL)
    assert events == _sqlite_rows(path, _EVENTS_SQL)  # the same events, in order
    types = {e[3] for e in events}
    assert {
        "automation_created",
        "automation_execution_started",
        "automation_execution_finished",
    } <= types, types

    async def verify() -> tuple[bool, int, str]:
        db = PgDatabase(pg_url)
        try:
            return await db.read(audit.verify_chain)
        finally:
            await db.close()

    ok, count, message = asyncio.run(verify())
    assert ok and count == len(events), message


def _url_argv(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "operator_core.cli", "--db", url, "--subject", SUBJECT, *args]


@pytest.mark.timeout(360)  # interpreter starts: see the first test
def test_two_writers_and_two_runners_start_one_execution_on_postgres(
    tmp_path: Path, pg_url: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Two processes escalate one ticket at once while two runners are up, on PostgreSQL:
    two events, one execution, its action proposed once (test_automation_runs.py's case)."""

    def cli(*args: str) -> str:
        done = subprocess.run(
            _url_argv(pg_url, *args),
            env=cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    definition = tmp_path / "esc.json"
    esc = linear(action("g", "guarded"), name="esc", trigger={"type": "escalation"})
    definition.write_text(json.dumps(esc))
    cli("automations", "apply", str(definition))
    ticket = int(json.loads(cli("ticket", "open", "api down", "--severity", "low", "--json"))["id"])
    logs = [tmp_path / "runner-a.log", tmp_path / "runner-b.log"]
    for log in logs:
        with log.open("wb") as err:
            procs.append(
                subprocess.Popen(
                    _url_argv(pg_url, "run", "--lease-seconds", "5"),
                    env=cli_env(tmp_path),
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
    for log in logs:
        wait_for(lambda log=log: started(log), 30, what=f"{log.name} to start")
    writers = [
        subprocess.Popen(
            _url_argv(pg_url, "ticket", "escalate", str(ticket)),
            env=cli_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for w in writers:
        assert w.wait(timeout=60) == 0, w.stderr.read() if w.stderr else ""
    pending = "SELECT COUNT(*) FROM ticket_events WHERE consumed_at IS NULL"
    wait_for(lambda: _pg_rows(pg_url, pending)[0] == [(0,)], 30, what="both events consumed")
    wait_for(
        lambda: _pg_rows(pg_url, "SELECT COUNT(*) FROM action_proposals")[0] == [(1,)],
        30,
        what="the execution's proposal",
    )
    for proc in procs:
        assert stop(proc) == 0
    events, runs, made = _pg_rows(
        pg_url,
        "SELECT COUNT(*) FROM ticket_events WHERE event_type = 'escalation'",
        "SELECT id, automation_name, ticket_id, status FROM automation_executions",
        "SELECT action_name, automation_execution_id FROM action_proposals",
    )
    assert events == [(2,)]
    assert [r[1:] for r in runs] == [("esc", ticket, "RUNNING")]
    assert made == [("guarded", runs[0][0])]
    for log in logs:
        assert b"Traceback" not in log.read_bytes()


def _dump(url: str) -> list[list[tuple[Any, ...]]]:
    tables = [
        "automations",
        "automation_versions",
        "automation_executions",
        "agent_budgets",
        "tickets",
        "ticket_events",
        "action_proposals",
        "action_audit_log",
    ]
    return _pg_rows(url, *(f"SELECT * FROM {t} ORDER BY 1" for t in tables))


@pytest.mark.timeout(360)  # interpreter starts: see the first test
def test_bad_automation_input_is_one_line_and_changes_nothing_on_postgres(
    tmp_path: Path, pg_url: str
) -> None:
    good = tmp_path / "esc.json"
    good.write_text(json.dumps(V1))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x"}))
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps(linear(action("n", "no_such_action"), name="u")))
    for args in (
        ("automations", "apply", str(good)),
        ("ticket", "open", "t"),
        ("automations", "run", "esc", "--ticket", "1"),  # seeds the policy, as on SQLite
    ):
        assert _operator(tmp_path, pg_url, *args).returncode == 0
    before = _dump(pg_url)
    for args, message in (
        (("automations", "apply", str(bad)), "bad.json"),
        (("automations", "apply", str(unknown)), "no_such_action"),
        (("automations", "run", "esc", "--ticket", "1"), "already has execution 1 open"),
        (("automations", "run", "nope", "--ticket", "1"), "no automation named 'nope'"),
        (("automations", "run", "esc", "--ticket", "999"), "no ticket"),
        (("automations", "execution", "42"), "no automation execution with id 42"),
        (("automations", "cancel", "42"), "no automation execution with id 42"),
        (("automations", "executions", "--status", "odd"), "unknown execution status"),
        (("automations", "rollback", "esc", "--to", "7"), "version"),
        (("automations", "diff", "esc", "1", "9"), "version"),
        (("agents", "set", "bad@name"), "agent name"),
        (("agents", "set", "x", "--per", "5q"), "--per"),
    ):
        done = _operator(tmp_path, pg_url, *args)
        assert done.returncode != 0 and done.stdout == "", (args, done.stdout)
        assert done.stderr.startswith("operator: ") and done.stderr.count("\n") == 1, done.stderr
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert _dump(pg_url) == before
