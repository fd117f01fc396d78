"""Execution budgets across real ``operator run`` processes on one SQLite file: two runners
together never start more than the budget in any window, and what waits runs when a slot
opens. Checked from the attempt records the runners wrote."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from pathlib import Path

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.clock import from_db
from operator_core.subjects.loader import load_subject

from tests.e2e.conftest import cli_argv, cli_env, query, run_cli, wait_for
from tests.e2e.test_runner_processes import started, stop

RUNBOOK = """
[actions.restart]
description = "Restart the thing"
argv = ["true"]
requires_approval = true
budget = {{ runs = 3, per = "{per}" }}
"""


def _setup(tmp_path: Path, per: str) -> tuple[Path, str]:
    book = tmp_path / "runbook.toml"
    book.write_text(RUNBOOK.format(per=per), encoding="utf-8")
    return tmp_path / "operator.db", f"commands:{book}"


def _propose_and_approve(db: Path, subject: str, n: int) -> list[int]:
    async def go() -> list[int]:
        ex = ActionExecutor(db, ActionRegistry.from_subject(load_subject(subject)))
        async with ex:
            ids = []
            for i in range(n):
                p = await ex.propose_action("restart", {}, f"restart {i}")
                await ex.approve_proposal(p.id or 0, "approver")
                ids.append(p.id or 0)
            return ids

    return asyncio.run(go())


def _runners(db: Path, subject: str, tmp_path: Path) -> list[tuple[subprocess.Popen[bytes], Path]]:
    out = []
    for name in ("a", "b"):
        log = tmp_path / f"runner-{name}.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                cli_argv(db, "run", "--concurrency", "4", subject=subject),
                env=cli_env(tmp_path),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        out.append((proc, log))
    for _, log in out:
        wait_for(lambda log=log: started(log), 20, what=f"{log.name} to start")
    return out


def _starts(db: Path) -> list[object]:
    return [
        from_db(r[0])
        for r in query(db, "SELECT started_at FROM action_records ORDER BY started_at")
    ]


def _most_in_any_window(starts: list[object], seconds: float) -> int:
    """The most starts any window of ``seconds`` holds (each window ending at a start)."""
    window = timedelta(seconds=seconds)
    return max(
        (sum(1 for s in starts if end - window < s <= end) for end in starts),  # type: ignore[operator]
        default=0,
    )


def test_two_runners_start_no_more_than_the_budget_and_the_rest_wait(tmp_path: Path) -> None:
    db, subject = _setup(tmp_path, "1h")
    ids = _propose_and_approve(db, subject, 10)
    runners = _runners(db, subject, tmp_path)
    try:
        wait_for(
            lambda: (
                query(db, "SELECT COUNT(*) FROM action_proposals WHERE status = 'completed'")[0][0]
                == 3
            ),
            30,
            what="three actions to complete",
        )
        # Both runners have cycled many times since: nothing more starts.
        for proc, _ in runners:
            proc.poll()
        wait_for(lambda: query(db, "SELECT COUNT(*) FROM budget_waits")[0][0] == 1, 10)
        shown = run_cli(db, "actions", "show", str(ids[-1]), subject=subject)
        status = run_cli(db, "status", subject=subject)
    finally:
        for proc, _ in runners:
            assert stop(proc) == 0
    assert len(query(db, "SELECT id FROM action_records")) == 3
    waiting = query(
        db,
        "SELECT COUNT(*) FROM action_proposals WHERE status = 'validated' "
        "AND approved_at IS NOT NULL",
    )[0][0]
    assert waiting == 7
    for _, log in runners:
        assert b"Traceback" not in log.read_bytes()
    assert "budget: next slot in" in shown.stdout, shown
    assert "restart" in status.stdout and "budget" in status.stdout, status


def test_with_a_short_window_the_rest_run_later_and_no_window_sees_more(tmp_path: Path) -> None:
    db, subject = _setup(tmp_path, "2s")
    _propose_and_approve(db, subject, 10)
    runners = _runners(db, subject, tmp_path)
    try:
        wait_for(
            lambda: (
                query(db, "SELECT COUNT(*) FROM action_proposals WHERE status = 'completed'")[0][0]
                == 10
            ),
            60,
            interval=0.1,
            what="all ten actions to complete, three per window",
        )
    finally:
        for proc, _ in runners:
            assert stop(proc) == 0
    starts = _starts(db)
    assert len(starts) == 10
    assert _most_in_any_window(starts, 2.0) <= 3
    # Four windows at least: 10 starts at 3 per 2 s take 6 s or more.
    assert starts[-1] - starts[0] >= timedelta(seconds=6)  # type: ignore[operator]
    runner_ids = {r[0] for r in query(db, "SELECT runner FROM action_records")}
    assert len(runner_ids) >= 1
