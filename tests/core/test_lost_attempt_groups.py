"""Recovery ends a lost attempt's process group on this host, only when the record proves it is
that group, and says what it could not check from another host."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.clock import FrozenClock
from operator_core.model.types import ActionRecord, ActionStatus
from operator_core.runner import Runner
from operator_core.subjects import supervisor
from operator_core.subjects.process_groups import host_name, start_token

from tests.conftest import FAST_RETRY
from tests.support.subjects import TestSubject


@pytest.fixture
def group() -> Iterator[subprocess.Popen[bytes]]:
    """A live process group of our own: a leader and its child."""
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & exec sleep 60"], start_new_session=True)
    yield proc
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


async def lose_attempt(
    tmp_path: Path, host: str, pgid: int, start: str | None
) -> tuple[ActionExecutor, FrozenClock, int]:
    """An action claimed by a runner that then vanished, its record pointing at ``pgid``."""
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    ex = ActionExecutor(
        tmp_path / "lost.db",
        ActionRegistry.from_subject(TestSubject()),
        approval_mode=False,
        retry_config=FAST_RETRY,
        clock=clock,
    )
    await ex.open()
    p = await ex.propose_action("ok", {}, "lost")
    assert p.id is not None
    [claim] = await ex.db.claim_ready(f"{host}:1:gone", 1, lease_seconds=5)
    assert claim.record.id is not None
    await ex.db.set_attempt_process(claim.record.id, host, pgid + 1, pgid, start)
    clock.advance(10)
    return ex, clock, p.id


async def recover(ex: ActionExecutor, proposal_id: int) -> tuple[str, dict[str, object]]:
    """Run a runner until idle; the lost attempt's error and its runner_lost audit data."""
    stats = await Runner(ex, poll_interval=0.05).run(until_idle=True)
    assert stats.recovered == [proposal_id]
    [record] = await ex.db.list_records(proposal_id)
    [event] = [
        e
        for e in await ex.db.list_audit_events(proposal_id=proposal_id)
        if e.event_type == "runner_lost"
    ]
    return str(record.error_message), dict(event.event_data)


async def test_recovery_ends_the_recorded_group_on_this_host(
    tmp_path: Path, group: subprocess.Popen[bytes]
) -> None:
    pgid = group.pid
    ex, _, pid = await lose_attempt(tmp_path, host_name(), pgid, start_token(pgid))
    try:
        error, event = await recover(ex, pid)
        assert not alive(pgid)
        assert group.wait(timeout=10) == -signal.SIGTERM
        assert f"its process group {pgid} (2 processes) was ended by {host_name()}" in error
        assert event["retry"] is True
        after = await ex.db.get_proposal(pid)
        assert after is not None and after.is_retry_waiting
    finally:
        await ex.close()


async def test_recovery_leaves_a_group_whose_start_token_differs(
    tmp_path: Path, group: subprocess.Popen[bytes]
) -> None:
    """The recorded pid now belongs to another process (pids are reused): not signalled."""
    pgid = group.pid
    token = start_token(pgid)
    assert token is not None
    boot, _, ticks = token.rpartition(":")
    ex, _, pid = await lose_attempt(tmp_path, host_name(), pgid, f"{boot}:{int(ticks) - 1}")
    try:
        error, _ = await recover(ex, pid)
        assert alive(pgid) and group.poll() is None
        assert f"its process group {pgid} had already ended" in error
    finally:
        await ex.close()


async def test_recovery_from_another_host_says_what_it_could_not_check(
    tmp_path: Path, group: subprocess.Popen[bytes]
) -> None:
    pgid = group.pid
    ex, _, pid = await lose_attempt(tmp_path, "elsewhere", pgid, start_token(pgid))
    try:
        error, event = await recover(ex, pid)
        assert alive(pgid)  # a group number on another host means nothing here
        assert error.startswith("runner lost (elsewhere:1:gone); runner lost on host elsewhere;")
        assert f"its process group {pgid} could not be checked from host {host_name()}" in error
        assert event["retry"] is True and "could not be checked" in str(event["processes"])
        after = await ex.db.get_proposal(pid)
        assert after is not None and after.status == ActionStatus.FAILED
        assert after.is_retry_waiting  # retried after the lease: see the README
    finally:
        await ex.close()


def test_the_supervisor_mirrors_the_commands_exit(tmp_path: Path) -> None:
    """What the runner reads from the supervisor: the command's exit code, or its signal."""

    def run(*argv: str) -> tuple[int, str]:
        left, right = socket.socketpair()
        with left, right:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    supervisor.__file__,
                    str(right.fileno()),
                    "0.5",
                    *argv,
                ],
                pass_fds=(right.fileno(),),
                capture_output=True,
                timeout=30,
                check=False,
            )
            right.close()
            report = left.recv(256).decode()
        assert report.endswith("\n"), report
        return proc.returncode, report

    assert run("sh", "-c", "exit 7")[0] == 7
    assert run("sh", "-c", "kill -TERM $$")[0] == -signal.SIGTERM
    code, report = run("true")
    assert code == 0 and int(report) > 0  # the command's pid
    assert run(str(tmp_path / "missing")) == (127, "ENo such file or directory\n")


def test_the_command_starts_with_default_signal_dispositions() -> None:
    """The supervisor is Python, which ignores SIGPIPE; the command must not inherit that
    (``yes | head`` would then never end)."""
    left, right = socket.socketpair()
    with left, right:
        proc = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                supervisor.__file__,
                str(right.fileno()),
                "0.5",
                "grep",
                "SigIgn",
                "/proc/self/status",
            ],
            pass_fds=(right.fileno(),),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    ignored = int(proc.stdout.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)), proc.stdout
    assert not ignored & (1 << (signal.SIGXFSZ - 1)), proc.stdout


async def test_a_lease_that_ran_out_since_the_last_cycle_still_wakes_the_runner(
    tmp_path: Path,
) -> None:
    """The runner's cycle saw the lease still valid; a moment later, computing how long to
    sleep, it has run out. It must wake the runner at once (it was skipped as 'past', and an
    idle runner slept on with the lost attempt unrecovered: seen once in 80 SIGKILL trials)."""
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    ex = ActionExecutor(
        tmp_path / "wake.db",
        ActionRegistry.from_subject(TestSubject()),
        approval_mode=False,
        retry_config=FAST_RETRY,
        clock=clock,
    )
    async with ex:
        await ex.propose_action("ok", {}, "held by a runner about to vanish")
        [claim] = await ex.db.claim_ready("ghost:1:x", 1, lease_seconds=5)
        cycle_at = clock.now()
        assert await ex.db.next_wakeup() == claim.proposal.lease_expires_at
        clock.advance(6)
        assert await ex.db.next_wakeup() is None  # nothing in the future any more
        assert await ex.db.next_wakeup(after=cycle_at) == claim.proposal.lease_expires_at


async def test_a_claims_attempt_record_names_the_process_fields_too(tmp_path: Path) -> None:
    """The claim builds each attempt's record on the hot path without model_construct's
    per-field loop, which it takes only for values naming every field: the process fields
    must be among them (None until the command starts)."""
    ex = ActionExecutor(
        tmp_path / "claim.db", ActionRegistry.from_subject(TestSubject()), approval_mode=False
    )
    async with ex:
        await ex.propose_action("ok", {}, "claimed")
        [claim] = await ex.db.claim_ready("runner-a", 1, lease_seconds=5)
    assert claim.record.model_fields_set == set(ActionRecord.model_fields)
    assert (claim.record.host, claim.record.pid, claim.record.pgid) == (None, None, None)
