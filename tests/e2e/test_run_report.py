"""``operator run`` tells the truth (issue 23, items 7 and 12): what became of each action it
ran, apart (completed, failed for good, waiting for retry), an exit code that says whether
something failed for good, a log line per attempt; ``status`` and ``actions show`` do not
call an action that waits for its retry "failed"."""

from __future__ import annotations

import json
import re
from pathlib import Path

from operator_core.actions.executor import ActionExecutor

from tests.e2e.conftest import run_cli, seed

ATTEMPT = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO action (\d+) attempt 1 \((\w+)\): "
    r"(ok|failed|failed for good) after \d+\.\d\ds \(started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)"
)


def _three(db: Path) -> None:
    async def go(ex: ActionExecutor) -> None:
        await ex.propose_action("ok", {}, "works")
        await ex.propose_action("fail_hard", {}, "cannot work")
        await ex.propose_action("fail", {}, "fails, then waits", max_retries=2)

    seed(db, go)


def test_until_idle_reports_outcomes_apart_and_exits_3_on_a_failure(db: Path) -> None:
    _three(db)
    ran = run_cli(db, "run", "--until-idle")
    assert ran.returncode == 3, ran.stderr
    lines = ran.stderr.splitlines()
    assert lines[-1].startswith(
        "runner done: 1 completed, 1 failed for good, 1 waiting for retry (next at 2"
    ), lines[-1]
    assert "Z), 0 cancelled, 0 recovered" in lines[-1]
    attempts = sorted(m.groups() for line in lines if (m := ATTEMPT.match(line)))
    assert attempts == [
        ("1", "ok", "ok"),
        ("2", "fail_hard", "failed for good"),
        ("3", "fail", "failed"),
    ], lines
    waiting = next(line for line in lines if "(fail):" in line)
    assert "retry 1/2 in " in waiting and "boom on attempt 1" in waiting

    status = json.loads(run_cli(db, "status", "--json").stdout)
    assert status["by_status"] == {"completed": 1, "failed": 1, "retry_waiting": 1}
    text = run_cli(db, "status").stdout
    by_status = next(line for line in text.splitlines() if line.startswith("by status"))
    assert "failed 1" in by_status and "retry_waiting 1" in by_status
    shown = run_cli(db, "actions", "show", "3").stdout.splitlines()[0]
    assert "[retry 1/2 at " in shown and "failed" not in shown


def test_until_idle_exits_0_when_nothing_failed_for_good(db: Path) -> None:
    async def go(ex: ActionExecutor) -> None:
        await ex.propose_action("ok", {}, "works")
        await ex.propose_action("fail", {}, "fails, then waits", max_retries=2)

    seed(db, go)
    ran = run_cli(db, "run", "--until-idle")
    assert ran.returncode == 0, ran.stderr
    assert "1 completed, 0 failed for good, 1 waiting for retry" in ran.stderr


def test_quiet_logs_no_attempt_and_verbose_logs_each_start(db: Path) -> None:
    _three(db)
    quiet = run_cli(db, "run", "--until-idle", "-q")
    assert quiet.returncode == 3
    assert [line for line in quiet.stderr.splitlines() if " INFO " in line] == []
    assert quiet.stderr.splitlines() == [
        next(line for line in quiet.stderr.splitlines() if line.startswith("runner done: 1"))
    ]

    seed(db, lambda ex: ex.propose_action("ok", {}, "one more"))
    loud = run_cli(db, "run", "--until-idle", "-v")
    assert loud.returncode == 0, loud.stderr
    assert re.search(r"Z DEBUG action 4 attempt 1 \(ok\): started$", loud.stderr, re.M)
    assert re.search(r"Z INFO action 4 attempt 1 \(ok\): ok after ", loud.stderr)
