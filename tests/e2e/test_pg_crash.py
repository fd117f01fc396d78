"""A runner SIGKILLed mid-action on PostgreSQL: once its lease runs out, the next runner
recovers the action by SQLite's rules (tests/e2e/test_lost_runner_processes.py), with the
same runbook command, whose marker files show every attempt that started and any attempt
that started while an earlier one still ran."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db import audit
from operator_core.db.pg.store import PgActionDB
from operator_core.db.url import NOWHERE
from operator_core.subjects.runbook import RunbookSubject
from psycopg.rows import dict_row

from tests.conftest import FAST_RETRY
from tests.e2e.conftest import cli_env, wait_for
from tests.e2e.test_lost_runner_processes import Bench, live_in_group, wait_pids

TRIALS = 3


class PgBench(Bench):
    """``Bench`` (same runbook, same command) on a PostgreSQL database."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        super().__init__(tmp_path)
        self.url = url
        self.env = cli_env(tmp_path)

    def _rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with psycopg.connect(self.url, row_factory=dict_row) as conn:
            return conn.execute(sql, params).fetchall()

    def propose(self, name: str) -> tuple[int, Path]:
        work = self.tmp / name
        work.mkdir()

        async def go() -> int:
            registry = ActionRegistry.from_subject(RunbookSubject(self.runbook))
            ex = ActionExecutor(
                NOWHERE,
                registry,
                approval_mode=False,
                retry_config=FAST_RETRY,
                db=PgActionDB(self.url),
            )
            async with ex:
                p = await ex.propose_action("hold", {"dir": str(work)}, f"trial {name}")
            assert p.id is not None
            return p.id

        return asyncio.run(go()), work

    def start_runner(self) -> subprocess.Popen[bytes]:
        log = self.tmp / f"runner-{len(self.runners)}.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "operator_core.cli", "--db", self.url),
                    *("--subject", self.subject, "run", "--lease-seconds", "1"),
                ],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.runners.append(proc)
        return proc

    def status(self, proposal_id: int) -> str:
        [row] = self._rows("SELECT status FROM action_proposals WHERE id = %s", (proposal_id,))
        return str(row["status"])

    def records(self, proposal_id: int) -> list[dict[str, object]]:
        return self._rows(
            "SELECT * FROM action_records WHERE proposal_id = %s ORDER BY attempt", (proposal_id,)
        )


def verify_chain(url: str) -> None:
    async def go() -> tuple[bool, int, str]:
        db = PgActionDB(url, read_only=True)
        async with db:
            return await db.read(audit.verify_chain)

    ok, _, message = asyncio.run(go())
    assert ok, message


def test_a_sigkilled_runner_s_action_is_recovered_once(tmp_path: Path, pg_url: str) -> None:
    bench = PgBench(tmp_path, pg_url)
    ids = []
    try:
        runner = bench.start_runner()
        for trial in range(TRIALS):
            pid, work = bench.propose(f"t{trial}")
            ids.append(pid)
            script, _, _ = wait_pids(work)
            pgid = os.getpgid(script)
            [record] = bench.records(pid)
            assert (record["pid"], record["pgid"]) == (script, pgid)
            assert record["completed_at"] is None and bench.status(pid) == "executing"

            runner.send_signal(signal.SIGKILL)
            runner.wait(timeout=10)
            # The lost attempt's last lease: nobody renews it any more.
            [lease] = bench._rows(
                "SELECT lease_expires_at FROM action_proposals WHERE id = %s", (pid,)
            )
            # The command's supervisor ends its group when the runner goes, as on SQLite.
            wait_for(lambda pgid=pgid: not live_in_group(pgid), 10, what=f"group {pgid} to go")

            runner = bench.start_runner()
            wait_for(
                lambda pid=pid, work=work, runner=runner: (
                    bench.status(pid) == "completed"
                    or (work / "overlap").exists()
                    or bench.exited(runner)
                ),
                60,
                interval=0.05,
                what=f"trial {trial}'s retry to complete",
            )
            assert not (work / "overlap").exists(), "the retry ran beside the lost attempt"
            starts = (work / "started").read_text().splitlines()
            assert len(starts) == 2, starts  # the lost attempt and its retry, nothing else
            lost, retried = bench.records(pid)
            assert str(lost["error_message"]).startswith("runner lost"), lost["error_message"]
            assert f"its process group {pgid} " in str(lost["error_message"])
            assert lost["completed_at"] is not None and lost["success"] == 0
            assert retried["success"] == 1
            # Recovered and retried only once the lost lease ran out (one clock, one format).
            expired = str(lease["lease_expires_at"])
            assert str(lost["completed_at"]) >= expired
            assert str(retried["started_at"]) >= expired
            [event] = bench._rows(
                "SELECT event_data FROM action_audit_log "
                "WHERE event_type = 'runner_lost' AND proposal_id = %s",
                (pid,),
            )
            assert json.loads(event["event_data"])["retry"] is True
    finally:
        bench.close()
        for proc in bench.runners:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    assert len(ids) == TRIALS
    counts = bench._rows(
        "SELECT proposal_id, COUNT(*) AS n, SUM(success) AS ok FROM action_records "
        "GROUP BY proposal_id ORDER BY proposal_id"
    )
    assert [(c["proposal_id"], c["n"], c["ok"]) for c in counts] == [(i, 2, 1) for i in ids]
    verify_chain(pg_url)
