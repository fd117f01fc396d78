"""Command actions: real subprocesses, run without a shell, killed as a process group."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from operator_core.errors import ActionFailed
from operator_core.model.types import ActionStatus

from .conftest import Runbooks
from .helpers import engine, is_alive, live_in_group, run_until_settled, wait_for_file

TOOL_ACTIONS = """
[actions.args]
argv = [@PY@, @TOOL@, "argv", "{text}", "n={count}", "{flag}", "{ratio}"]
timeout = 5
[actions.args.params.text]
type = "string"
[actions.args.params.count]
type = "integer"
default = 2
[actions.args.params.flag]
type = "boolean"
default = false
[actions.args.params.ratio]
type = "number"
default = 0.5

[actions.fail]
argv = [@PY@, @TOOL@, "exit", "3", "disk is on fire"]
timeout = 5

[actions.sleepy]
argv = [@PY@, @TOOL@, "sleep", "{seconds}"]
timeout = 0.5
kill_grace = 0.2
[actions.sleepy.params.seconds]
type = "number"
default = 30

[actions.chatty]
argv = [@PY@, @TOOL@, "chatty", "1000000"]
timeout = 10

[actions.spawn]
argv = [@PY@, @TOOL@, "spawn", "{pidfile}"]
timeout = 30
[actions.spawn.params.pidfile]
type = "string"

[actions.stubborn]
argv = [@PY@, @TOOL@, "stubborn", "{pidfile}"]
timeout = 30
kill_grace = 0.2
[actions.stubborn.params.pidfile]
type = "string"

[actions.leave_child]
argv = [@PY@, @TOOL@, "leave-child", "{pidfile}"]
timeout = 5
kill_grace = 0.2
[actions.leave_child.params.pidfile]
type = "string"

[actions.hold_output]
argv = [@PY@, @TOOL@, "hold-output", "{pidfile}"]
timeout = 5
kill_grace = 0.2
[actions.hold_output.params.pidfile]
type = "string"

[actions.show_env]
argv = [@PY@, @TOOL@, "echo-env", "{var}"]
env = { GREETING = "hello {who}", EMPTY = "" }
timeout = 5
[actions.show_env.params.var]
type = "string"
[actions.show_env.params.who]
type = "string"
default = "world"

[actions.where]
argv = [@PY@, "-c", "import os; print(os.getcwd())"]
cwd = "work"
timeout = 5

[actions.missing_program]
argv = ["/nonexistent/program-xyz", "{text}"]
timeout = 5
[actions.missing_program.params.text]
type = "string"
default = "x"

[actions.flaky]
argv = [@PY@, @TOOL@, "flaky", "{state}"]
timeout = 5
retry = { max_retries = 2, backoff_min = 0.05, backoff_max = 0.1 }
[actions.flaky.params.state]
type = "string"

[actions.always_fails]
argv = [@PY@, @TOOL@, "exit", "1", "nope"]
timeout = 5
retry = { max_retries = 1, backoff_min = 0.05, backoff_max = 0.05 }
"""


@pytest.fixture
def subject(runbooks: Runbooks):
    (runbooks.tmp_path / "work").mkdir()
    return runbooks.load(TOOL_ACTIONS)


async def test_success_records_exit_code_duration_and_output(runbooks, subject) -> None:
    result = await runbooks.execute(subject, "args", {"text": "hello"})
    assert result is not None
    assert result["exit_code"] == 0
    assert json.loads(result["stdout_tail"]) == ["hello", "n=2", "false", "0.5"]
    assert result["stderr_tail"] == ""
    assert 0 < result["duration_seconds"] < 5


async def test_typed_parameters_render_as_text(runbooks, subject) -> None:
    result = await runbooks.execute(
        subject, "args", {"text": "t", "count": "7", "flag": "yes", "ratio": 2}
    )
    assert result is not None
    assert json.loads(result["stdout_tail"]) == ["t", "n=7", "true", "2.0"]


@pytest.mark.parametrize(
    "hostile",
    [
        "; rm -rf /",
        "$(id)",
        "`id`",
        "a\nb\nc",
        'it\'s "quoted"',
        "* ~ $HOME && touch @TMP@/pwned || | > @TMP@/pwned",
        "--help",
        "",
        " spaced out ",
    ],
)
async def test_parameters_reach_the_program_as_single_literal_arguments(
    runbooks, subject, hostile: str, tmp_path: Path
) -> None:
    """Through the real engine and database: the value is one argv item, byte for byte."""
    hostile = hostile.replace("@TMP@", str(tmp_path))
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("args", {"text": hostile}, reason="injection test")
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        assert done.status == ActionStatus.COMPLETED
        [record] = await ex.db.list_records(p.id)
    assert record.result_data is not None
    assert json.loads(record.result_data["stdout_tail"])[0] == hostile
    assert not (tmp_path / "pwned").exists()


async def test_non_zero_exit_is_a_retryable_failure_with_stderr_tail(runbooks, subject) -> None:
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "fail")
    exc = info.value
    assert exc.retryable
    assert "exit code 3" in str(exc) and "disk is on fire" in str(exc)
    assert exc.result_data is not None
    assert exc.result_data["exit_code"] == 3
    assert exc.result_data["stderr_tail"].strip() == "disk is on fire"


async def test_timeout_kills_the_process_and_is_retryable(runbooks, subject) -> None:
    started = time.monotonic()
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "sleepy")
    elapsed = time.monotonic() - started
    assert info.value.retryable
    assert "timed out after 0.5s" in str(info.value)
    data = info.value.result_data
    assert data is not None and data["timed_out"] is True
    assert data["stdout_tail"].strip() == "started"
    assert data["exit_code"] is not None and data["exit_code"] < 0  # killed by a signal
    assert elapsed < 2.0


async def test_output_keeps_only_the_last_4_kib(runbooks, subject) -> None:
    result = await runbooks.execute(subject, "chatty")
    assert result is not None
    assert result["stdout_bytes"] > 1_000_000
    assert len(result["stdout_tail"]) <= 4096
    assert result["stdout_tail"].endswith("THE-END\n")


async def test_cancel_terminates_the_whole_process_group(runbooks, subject, tmp_path) -> None:
    """The child ignores SIGTERM: it must still go (SIGKILL after the grace period)."""
    pidfile = tmp_path / "spawn.pids"
    task = asyncio.create_task(runbooks.execute(subject, "spawn", {"pidfile": str(pidfile)}))
    parent, child = map(int, (await wait_for_file(pidfile)).split())
    # The command and its child share one group of their own, led by their supervisor.
    pgid = os.getpgid(parent)
    assert os.getpgid(child) == pgid != os.getpgid(0)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.5
    assert live_in_group(pgid) == []
    assert not is_alive(child)


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.05])
async def test_a_cancel_right_after_start_leaves_nothing_running(
    runbooks, subject, tmp_path, delay: float
) -> None:
    pidfile = tmp_path / "early.pids"
    task = asyncio.create_task(runbooks.execute(subject, "spawn", {"pidfile": str(pidfile)}))
    await asyncio.sleep(delay)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)  # had the command got far enough to start its child?
    if pidfile.exists():
        parent, child = map(int, pidfile.read_text().split())
        assert not is_alive(parent) and not is_alive(child)


async def test_a_process_ignoring_sigterm_is_killed_after_the_grace(
    runbooks, subject, tmp_path
) -> None:
    pidfile = tmp_path / "stubborn.pids"
    task = asyncio.create_task(runbooks.execute(subject, "stubborn", {"pidfile": str(pidfile)}))
    parent, child = map(int, (await wait_for_file(pidfile)).split())
    pgid = os.getpgid(parent)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    elapsed = time.monotonic() - started
    assert 0.15 < elapsed < 1.0  # kill_grace = 0.2
    assert live_in_group(pgid) == []


async def test_children_left_behind_after_exit_are_killed(runbooks, subject, tmp_path) -> None:
    pidfile = tmp_path / "left.pid"
    result = await runbooks.execute(subject, "leave_child", {"pidfile": str(pidfile)})
    assert result is not None and result["exit_code"] == 0
    assert result["killed_leftover_processes"] is True
    assert not is_alive(int(pidfile.read_text()))


async def test_a_child_holding_the_output_open_does_not_stall_a_finished_command(
    runbooks, subject, tmp_path
) -> None:
    pidfile = tmp_path / "held.pid"
    result = await runbooks.execute(subject, "hold_output", {"pidfile": str(pidfile)})
    assert result is not None and result["exit_code"] == 0
    assert result["killed_leftover_processes"] is True
    assert result["duration_seconds"] < 3  # not the 5 s timeout
    assert not is_alive(int(pidfile.read_text()))


async def test_env_additions_reach_the_command_but_operator_secrets_do_not(
    runbooks, subject, monkeypatch
) -> None:
    monkeypatch.setenv("OPERATOR_SECRET_UNUSED", "do-not-inherit")
    result = await runbooks.execute(subject, "show_env", {"var": "GREETING", "who": "ops"})
    assert result is not None and "value=hello ops" in result["stdout_tail"]
    result = await runbooks.execute(subject, "show_env", {"var": "OPERATOR_SECRET_UNUSED"})
    assert result is not None and result["stdout_tail"].strip() == "value="


async def test_relative_cwd_is_relative_to_the_runbook_file(runbooks, subject) -> None:
    result = await runbooks.execute(subject, "where")
    assert result is not None
    assert result["stdout_tail"].strip() == str((runbooks.tmp_path / "work").resolve())


async def test_missing_program_fails_for_good(runbooks, subject) -> None:
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "missing_program")
    assert not info.value.retryable
    assert "/nonexistent/program-xyz" in str(info.value)


async def test_a_nul_byte_in_an_argument_fails_for_good(runbooks, subject) -> None:
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "args", {"text": "a\x00b"})
    assert not info.value.retryable


async def test_invalid_parameters_are_refused_before_anything_runs(runbooks, subject) -> None:
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "args", {"text": "x", "count": "many"})
    assert not info.value.retryable
    assert "count" in str(info.value)


async def test_failure_then_success_retries_through_the_runner(runbooks, subject, tmp_path) -> None:
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action(
            "flaky", {"state": str(tmp_path / "flaky.state")}, reason="retry test"
        )
        assert p.id is not None and p.max_retries == 2  # from the runbook's retry policy
        done = await run_until_settled(ex, p.id)
        records = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.COMPLETED
    assert [r.success for r in records] == [False, True]
    assert records[0].result_data is not None
    assert records[0].result_data["exit_code"] == 1
    assert "first attempt fails" in records[0].result_data["stderr_tail"]
    assert records[1].result_data is not None
    assert "second attempt works" in records[1].result_data["stdout_tail"]


async def test_retries_stop_at_the_runbook_limit(runbooks, subject, tmp_path) -> None:
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("always_fails", {}, reason="retry limit")
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        records = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.FAILED
    assert len(records) == 2  # the first attempt and max_retries = 1
    assert all(r.error_message and "exit code 1" in r.error_message for r in records)


def test_preview_shows_the_exact_command_line(subject) -> None:
    preview = subject.preview("args", {"text": "; rm -rf /"})
    assert preview is not None
    first = preview.splitlines()[0]
    assert first.endswith("argv '; rm -rf /' n=2 false 0.5")
    env_preview = subject.preview("show_env", {"var": "X"})
    assert env_preview is not None and "env: GREETING='hello world' EMPTY=''" in env_preview
    assert subject.preview("nope", {}) is None
    bad = subject.preview("args", {"count": 1})
    assert bad is not None and bad.startswith("cannot preview:") and "text" in bad
