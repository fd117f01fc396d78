"""The kill switch pulled while attempts are failing and retrying (issue 20, item 7): a real
``operator run`` process works through quickly failing commands; the switch is pulled from
this process mid-stream, trial after trial. Nothing may be left retry-waiting, or asked to stop
and never ended."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.subjects.loader import load_subject

from tests.e2e.conftest import cli_argv, cli_env, query, wait_for

TRIALS = 20
PER_TRIAL = 12

RUNBOOK = """
[actions.flop]
description = "fails after a moment, retried quickly and often"
argv = ["/bin/sh", "-c", "sleep 0.02; echo no >&2; exit 1"]
timeout = 10
retry = { max_retries = 1000, backoff_min = 0.01, backoff_max = 0.05 }
"""

# Asked to stop, yet neither executing nor finished: nothing would ever claim or end it.
LEFT_ASKED_TO_STOP = (
    "SELECT COUNT(*) FROM action_proposals WHERE cancel_requested <> 0 AND status NOT IN "
    "('executing', 'completed', 'cancelled') AND NOT (status = 'failed' AND next_retry_at IS NULL)"
)
RETRY_WAITING = (
    "SELECT COUNT(*) FROM action_proposals WHERE status = 'failed' AND next_retry_at IS NOT NULL"
)


def count(db: Path, sql: str, params: tuple[object, ...] = ()) -> int:
    return int(query(db, sql, params)[0][0])


@pytest.mark.sqlite_only("builds its executor on the file; PostgreSQL: test_pg_kill_switch")
def test_kill_switch_mid_stream_leaves_nothing_retry_waiting_or_unfinished(
    db: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    runbook = tmp_path / "runbook.toml"
    runbook.write_text(RUNBOOK)
    spec = f"commands:{runbook}"
    registry = ActionRegistry.from_subject(load_subject(spec))

    async def go(fn):  # type: ignore[no-untyped-def]
        async with ActionExecutor(db, registry, approval_mode=False) as ex:
            return await fn(ex)

    asyncio.run(go(lambda ex: ex.db.data_version()))  # creates the database
    log = tmp_path / "runner.log"
    with log.open("wb") as err:
        runner = subprocess.Popen(
            cli_argv(db, "run", "--concurrency", "8", subject=spec),
            env=cli_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    procs.append(runner)
    figures = []
    for trial in range(TRIALS):
        batch = [{"action_name": "flop", "reason": f"trial {trial}"}] * PER_TRIAL
        ids = asyncio.run(go(lambda ex, batch=batch: ex.propose_actions(batch)))
        first = ids[0].id
        # Mid-stream: every action has failed at least once and attempts are still going.
        wait_for(
            lambda first=first: (
                count(
                    db,
                    "SELECT COUNT(DISTINCT proposal_id) FROM action_audit_log WHERE "
                    "event_type = 'retry_scheduled' AND proposal_id >= ?",
                    (first,),
                )
                == PER_TRIAL
            ),
            60,
            interval=0.01,
            what=f"trial {trial}: failures to stream",
        )
        result = asyncio.run(go(lambda ex: ex.kill_switch("oncall@e2e")))
        wait_for(
            lambda: (
                count(db, "SELECT COUNT(*) FROM action_proposals WHERE status = 'executing'") == 0
            ),
            30,
            interval=0.01,
            what=f"trial {trial}: the runner to stop",
        )
        left = count(db, LEFT_ASKED_TO_STOP)
        waiting = count(db, RETRY_WAITING)
        statuses = {
            r[0]: r[1]
            for r in query(
                db,
                "SELECT status, COUNT(*) FROM action_proposals WHERE id >= ? GROUP BY status",
                (first,),
            )
        }
        figures.append(
            (len(result.cancelled_actions), len(result.executing_signalled), left, waiting)
        )
        assert (left, waiting) == (0, 0), (trial, statuses)
        assert statuses == {"cancelled": PER_TRIAL}, (trial, statuses)
        assert asyncio.run(go(lambda ex: ex.resume("oncall@e2e"))) is True

    assert runner.poll() is None, log.read_text()
    runner.terminate()
    assert runner.wait(timeout=15) == 0
    assert b"Traceback" not in log.read_bytes()
    # Resumed after the last trial: nothing cancelled comes back, nothing is left to finish.
    assert count(db, "SELECT COUNT(*) FROM action_proposals WHERE status <> 'cancelled'") == 0
    assert count(db, "SELECT COUNT(*) FROM action_records WHERE completed_at IS NULL") == 0
    kills = [
        json.loads(r[0])
        for r in query(
            db, "SELECT event_data FROM action_audit_log WHERE event_type = 'kill_switch'"
        )
    ]
    assert len(kills) == TRIALS
    waiting_at_pull = sum(f[0] for f in figures)
    executing_at_pull = sum(f[1] for f in figures)
    print(
        f"\nkill switch mid-stream, {TRIALS} trials of {PER_TRIAL} failing actions: the pull "
        f"cancelled {waiting_at_pull} waiting and stopped {executing_at_pull} executing; runners "
        f"had stopped {TRIALS * PER_TRIAL - waiting_at_pull - executing_at_pull} on the kill file "
        f"before its database transaction; left asked-to-stop-but-unfinished "
        f"{sum(f[2] for f in figures)}, retry-waiting after the pull {sum(f[3] for f in figures)}"
    )
