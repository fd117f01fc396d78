"""A command dies with its runner, and the retry never runs beside the lost attempt.

Real ``operator run`` processes with a runbook command that starts a child and a grandchild,
all holding an exclusive lock on one file: an attempt that starts while any process of an
earlier attempt still lives cannot take the lock, and writes an ``overlap`` marker. So an
overlap is detected, never assumed away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.subjects.runbook import RunbookSubject

from tests.conftest import FAST_RETRY
from tests.e2e.conftest import cli_argv, cli_env, query, run_cli, wait_for

TRIALS = 20

# Attempt 1 takes the lock, starts `sh` (which starts a grandchild `sleep`), writes the three
# pids and sleeps; every later attempt takes the lock and exits 0 at once.
ATTEMPT = r"""
import fcntl, os, subprocess, sys, time

d = sys.argv[1]
lock = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CREAT)
try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    with open(os.path.join(d, "overlap"), "a") as f:
        f.write(f"{os.getpid()} {time.time()}\n")
    sys.exit(3)
first = not os.path.exists(os.path.join(d, "started"))
with open(os.path.join(d, "started"), "a") as f:
    f.write(f"{os.getpid()} {time.time()}\n")
if not first:
    sys.exit(0)
grandchild = os.path.join(d, "grandchild.pid")
child = subprocess.Popen(
    ["sh", "-c", 'sleep 60 & echo $! > "$0"; exec sleep 60', grandchild], pass_fds=[lock]
)
while not (os.path.exists(grandchild) and open(grandchild).read().strip()):
    time.sleep(0.01)
with open(os.path.join(d, "pids.tmp"), "w") as f:
    f.write(f"{os.getpid()} {child.pid} {open(grandchild).read().strip()}")
os.replace(os.path.join(d, "pids.tmp"), os.path.join(d, "pids"))
time.sleep(60)
"""

RUNBOOK = """
[actions.hold]
description = "Holds a lock with a child and a grandchild"
argv = [{python}, {script}, "{{dir}}"]
timeout = 120
kill_grace = 0.5
[actions.hold.params.dir]
type = "string"
"""


def live_in_group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[2] == str(pgid) and fields[0] != "Z":
            pids.append(int(name))
    return pids


class Bench:
    """One database and runbook; runners started and killed as real processes."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.db = tmp_path / "operator.db"
        script = tmp_path / "attempt.py"
        script.write_text(ATTEMPT)
        self.runbook = tmp_path / "runbook.toml"
        self.runbook.write_text(
            RUNBOOK.format(python=json.dumps(sys.executable), script=json.dumps(str(script)))
        )
        self.subject = f"runbook:{self.runbook}"
        self.env = cli_env(tmp_path)
        self.runners: list[subprocess.Popen[bytes]] = []

    def propose(self, name: str) -> tuple[int, Path]:
        work = self.tmp / name
        work.mkdir()

        async def go() -> int:
            registry = ActionRegistry.from_subject(RunbookSubject(self.runbook))
            ex = ActionExecutor(self.db, registry, approval_mode=False, retry_config=FAST_RETRY)
            async with ex:
                p = await ex.propose_action("hold", {"dir": str(work)}, f"trial {name}")
            assert p.id is not None
            return p.id

        return asyncio.run(go()), work

    def start_runner(self) -> subprocess.Popen[bytes]:
        log = self.tmp / f"runner-{len(self.runners)}.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                cli_argv(self.db, "run", "--lease-seconds", "1", subject=self.subject),
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.runners.append(proc)
        return proc

    def status(self, proposal_id: int) -> str:
        row = query(self.db, "SELECT status FROM action_proposals WHERE id = ?", (proposal_id,))
        return str(row[0][0])

    def records(self, proposal_id: int) -> list[dict[str, object]]:
        rows = query(
            self.db,
            "SELECT * FROM action_records WHERE proposal_id = ? ORDER BY attempt",
            (proposal_id,),
        )
        return [dict(r) for r in rows]

    def exited(self, runner: subprocess.Popen[bytes]) -> bool:
        """A runner that exits by itself is a defect: fail with its log."""
        if runner.poll() is None:
            return False
        log = self.tmp / f"runner-{self.runners.index(runner)}.log"
        raise AssertionError(f"runner exited with {runner.returncode}: {log.read_text()}")

    def close(self) -> None:
        for proc in self.runners:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def wait_pids(work: Path) -> tuple[int, int, int]:
    text = wait_for(
        lambda: (work / "pids").exists() and (work / "pids").read_text(),
        30,
        what="the command to start its child and grandchild",
    )
    script, child, grandchild = map(int, str(text).split())
    return script, child, grandchild


def test_sigkilled_runner_leaves_no_orphans_and_its_retry_never_overlaps(
    tmp_path: Path,
) -> None:
    bench = Bench(tmp_path)
    orphans = overlaps = done = 0
    gone_after: list[float] = []
    try:
        runner = bench.start_runner()
        for trial in range(TRIALS):
            pid, work = bench.propose(f"t{trial}")
            script, child, grandchild = wait_pids(work)
            pgid = os.getpgid(script)
            group = live_in_group(pgid)
            # The supervisor (the group's leader), the command, its child, its grandchild.
            assert {pgid, script, child, grandchild} <= set(group), group
            [record] = bench.records(pid)
            if trial == 0:
                assert record["pid"] == script and record["pgid"] == pgid
                assert record["host"] == os.uname().nodename
                assert str(record["process_start"]).count(":") == 1

            killed = time.monotonic()
            runner.send_signal(signal.SIGKILL)
            runner.wait(timeout=10)
            try:
                wait_for(lambda pgid=pgid: not live_in_group(pgid), 10, what=f"group {pgid} to go")
                gone_after.append(time.monotonic() - killed)
            except AssertionError:
                orphans += 1  # left running: the next runner must still not overlap it

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
            if (work / "overlap").exists():
                overlaps += 1
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                continue
            starts = (work / "started").read_text().splitlines()
            assert len(starts) == 2, starts  # the lost attempt and its retry, nothing else
            lost, retried = bench.records(pid)
            assert str(lost["error_message"]).startswith("runner lost")
            assert retried["success"] == 1
            # Its supervisor had ended the group; the next runner checked it before retrying.
            assert f"its process group {pgid} " in str(lost["error_message"])
            done += 1
    finally:
        bench.close()
        middle = sorted(gone_after)[len(gone_after) // 2] if gone_after else float("nan")
        print(
            f"\n{done} of {TRIALS} SIGKILL trials done: {orphans} orphaned groups, "
            f"{overlaps} overlapping attempts; each group gone {middle:.3f} s after the kill "
            "(median), "
            f"{max(gone_after, default=float('nan')):.3f} s at most"
        )
    assert orphans == 0
    assert overlaps == 0
    assert done == TRIALS


def test_the_next_runner_ends_a_group_its_supervisor_could_not(tmp_path: Path) -> None:
    """The supervisor is SIGKILLed too (runner stopped first, so neither can clean up): the
    command, its child and grandchild are left running. The next runner on this host finds
    them through the record, verifies the group and ends it before the retry."""
    bench = Bench(tmp_path)
    try:
        runner = bench.start_runner()
        pid, work = bench.propose("left")
        script, child, grandchild = wait_pids(work)
        pgid = os.getpgid(script)
        shown = run_cli(
            bench.db, "actions", "show", str(pid), "--json", env=bench.env, subject=bench.subject
        )
        assert shown.returncode == 0, shown.stderr
        [open_record] = json.loads(shown.stdout)["records"]
        assert (open_record["pid"], open_record["pgid"]) == (script, pgid)
        assert open_record["host"] == os.uname().nodename and open_record["process_start"]

        runner.send_signal(signal.SIGSTOP)
        os.kill(pgid, signal.SIGKILL)  # the supervisor
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        left = set(live_in_group(pgid))
        assert {script, child, grandchild} <= left and pgid not in left

        bench.start_runner()
        wait_for(
            lambda: bench.status(pid) == "completed" or (work / "overlap").exists(),
            60,
            interval=0.05,
            what="the retry to complete",
        )
        assert not (work / "overlap").exists(), "the retry ran beside the lost attempt"
        assert live_in_group(pgid) == []
        lost, retried = bench.records(pid)
        assert f"its process group {pgid} (3 processes) was ended" in str(lost["error_message"]), (
            lost["error_message"]
        )
        assert retried["success"] == 1
        [event] = query(
            bench.db,
            "SELECT event_data FROM action_audit_log WHERE "
            "event_type = 'runner_lost' AND proposal_id = ?",
            (pid,),
        )
        assert json.loads(event[0])["retry"] is True
    finally:
        bench.close()
