"""Automation executions with real ``operator`` processes: two runners and two writers at
once start one execution and propose each action once; a runner that starts after the event
still picks it up; the executions CLI, and its bad input as one line that changes nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.automations.helpers import action, linear
from tests.e2e.conftest import (
    assert_one_line_error,
    cli_argv,
    cli_env,
    dump,
    query,
    run_cli,
    start_runner,
    wait_for,
)
from tests.e2e.test_runner_processes import started, stop

CLI = Callable[..., Any]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def apply(db: Path, tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / f"{data['name']}.json"
    path.write_text(json.dumps(data))
    ok(run_cli(db, "automations", "apply", str(path)))


def open_ticket(db: Path, *args: str) -> int:
    out = ok(run_cli(db, "ticket", "open", "api down", *args, "--json"))
    return int(json.loads(out)["id"])


def executions(db: Path) -> list[dict[str, Any]]:
    return [dict(r) for r in query(db, "SELECT * FROM automation_executions ORDER BY id")]


def test_two_writers_and_two_runners_start_one_execution(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Two processes escalate the same ticket at the same moment (two escalation events)
    while two runners are up: one execution, its action proposed once."""
    apply(db, tmp_path, linear(action("g", "guarded"), name="esc", trigger={"type": "escalation"}))
    ticket = open_ticket(db, "--severity", "low")
    logs = [tmp_path / "runner-a.log", tmp_path / "runner-b.log"]
    for log in logs:
        procs.append(start_runner(db, log, "--lease-seconds", "5"))
    for log in logs:
        wait_for(lambda log=log: started(log), 15, what=f"{log.name} to start")
    writers = [
        subprocess.Popen(
            cli_argv(db, "ticket", "escalate", str(ticket)),
            env=cli_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for w in writers:
        assert w.wait(timeout=30) == 0, w.stderr.read() if w.stderr else ""
    events = query(
        db,
        "SELECT COUNT(*) FROM ticket_events WHERE event_type = 'escalation' AND ticket_id = ?",
        (ticket,),
    )[0][0]
    assert events == 2
    wait_for(
        lambda: (
            query(db, "SELECT COUNT(*) FROM ticket_events WHERE consumed_at IS NULL")[0][0] == 0
        ),
        20,
        what="both events to be consumed",
    )
    for proc in procs:
        assert stop(proc) == 0
    runs = executions(db)
    assert [(r["automation_name"], r["ticket_id"], r["status"]) for r in runs] == [
        ("esc", ticket, "RUNNING")
    ]
    made = query(db, "SELECT * FROM action_proposals")
    assert [(p["action_name"], p["automation_execution_id"]) for p in made] == [
        ("guarded", runs[0]["id"])
    ]
    for log in logs:
        assert b"Traceback" not in log.read_bytes()


def test_a_runner_started_later_picks_up_the_event(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    apply(db, tmp_path, linear(action("a", "ok"), name="later"))
    ticket = open_ticket(db)
    assert executions(db) == []
    log = tmp_path / "runner.log"
    procs.append(start_runner(db, log))
    wait_for(
        lambda: [r["status"] for r in executions(db)] == ["COMPLETED"],
        20,
        what="the execution to complete",
    )
    assert stop(procs[0]) == 0
    (run,) = executions(db)
    assert run["ticket_id"] == ticket
    shown = ok(run_cli(db, "actions", "show", "1"))
    assert f"automation: later v1, node a, execution {run['id']}" in shown
    origin = json.loads(ok(run_cli(db, "actions", "show", "1", "--json")))["automation"]
    assert origin["automation"] == "later" and origin["node"] == "a"


def test_executions_cli(db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    apply(db, tmp_path, linear(action("g", "guarded"), name="hand", trigger={"type": "manual"}))
    ticket = open_ticket(db)
    out = ok(run_cli(db, "automations", "run", "hand", "--ticket", str(ticket), "--json"))
    run = json.loads(out)
    assert (run["status"], run["trigger"], run["ticket_id"]) == ("PENDING", "manual", ticket)
    log = tmp_path / "runner.log"
    procs.append(start_runner(db, log))
    wait_for(
        lambda: query(db, "SELECT COUNT(*) FROM action_proposals")[0][0] == 1,
        20,
        what="the manual run's proposal",
    )
    assert stop(procs[0]) == 0
    listed = json.loads(
        ok(run_cli(db, "automations", "executions", "--status", "running", "--json"))
    )
    assert [e["id"] for e in listed] == [run["id"]]
    table = ok(run_cli(db, "automations", "executions", "--automation", "hand"))
    assert "hand" in table and "RUNNING" in table
    shown = json.loads(ok(run_cli(db, "automations", "execution", str(run["id"]), "--json")))
    assert shown["nodes"]["g"]["status"] == "running"
    assert shown["proposals"] == [{"id": 1, "node": "g", "status": "validated"}]
    assert shown["definition"]["name"] == "hand"
    text = ok(run_cli(db, "automations", "execution", str(run["id"])))
    assert "hand v1 on ticket" in text and "RUNNING" in text and "g  " in text
    assert "cancelled" in ok(
        run_cli(db, "automations", "cancel", str(run["id"]), "--reason", "not now")
    )
    after = json.loads(ok(run_cli(db, "automations", "execution", str(run["id"]), "--json")))
    assert (after["status"], after["error"]) == ("CANCELLED", "not now")
    assert query(db, "SELECT status FROM action_proposals")[0][0] == "cancelled"


def test_bad_execution_input_is_one_line_and_changes_nothing(
    db: Path, tmp_path: Path, cli_in_process: CLI
) -> None:
    apply(db, tmp_path, linear(action("a", "ok"), name="hand", trigger={"type": "manual"}))
    apply(db, tmp_path, linear(action("g", "guarded"), name="busy", trigger={"type": "manual"}))
    ticket = open_ticket(db)
    ok(run_cli(db, "automations", "disable", "hand"))
    started = json.loads(
        ok(run_cli(db, "automations", "run", "busy", "--ticket", str(ticket), "--json"))
    )
    before = dump(db)
    cases = [
        (
            ("automations", "run", "busy", "--ticket", str(ticket)),
            f"already has execution {started['id']} open",
        ),
        (("automations", "run", "hand", "--ticket", str(ticket)), "disabled"),
        (("automations", "run", "nope", "--ticket", str(ticket)), "no automation named"),
        (("automations", "run", "hand", "--ticket", "999"), "no ticket"),
        (("automations", "execution", "42"), "no automation execution with id 42"),
        (("automations", "cancel", "42"), "no automation execution with id 42"),
        (("automations", "executions", "--status", "odd"), "unknown execution status"),
        (("automations", "executions", "--automation", "nope"), "no automation named"),
    ]
    for args, expected in cases:
        line = assert_one_line_error(cli_in_process(*args))
        assert expected in line, (args, line)
    assert dump(db) == before
