"""Secrets reach commands through the environment or standard input, not argv, which
every local user can read in the process list."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from operator_core.errors import ConfigError

from .conftest import Runbooks
from .helpers import wait_for_file

SECRET = 'Sx81-a+b/c=d&e f%g"h\\-q0Zr'

HOLD = """
[actions.hold]
argv = [@PY@, @TOOL@, "stdin-hold", "@PIDFILE@"]
env = { TOKEN = "{secret:TOKEN}" }
stdin = "token={secret:TOKEN}"
timeout = 20
"""


def test_a_secret_in_argv_is_refused_with_the_reason_and_the_way_out(
    runbooks: Runbooks,
) -> None:
    with pytest.raises(ConfigError) as info:
        runbooks.load('[actions.a]\nargv = ["curl", "-u", "ops:{secret:PASSWORD}", "https://x"]\n')
    message = str(info.value)
    assert "action 'a': field 'argv[2]'" in message
    assert "{secret:PASSWORD}" in message and "process list" in message
    assert "env" in message and "stdin" in message and "secrets_in_argv = true" in message


def test_an_action_may_accept_a_secret_in_argv_explicitly(runbooks: Runbooks) -> None:
    subject = runbooks.load(
        '[actions.a]\nargv = ["curl", "-u", "ops:{secret:P}", "https://x"]\n'
        "secrets_in_argv = true\n"
    )
    assert subject.actions["a"].secrets == ["P"]
    with pytest.raises(ConfigError, match="secrets_in_argv.*true or false"):
        runbooks.load('[actions.a]\nargv = ["ls", "{secret:P}"]\nsecrets_in_argv = "yes"\n')


async def test_env_and_stdin_hand_the_secret_over_out_of_the_process_list(
    runbooks: Runbooks, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OPERATOR_SECRET_TOKEN", SECRET)
    pidfile = tmp_path / "hold.pid"
    subject = runbooks.load(HOLD.replace("@PIDFILE@", str(pidfile)))
    task = asyncio.create_task(runbooks.execute(subject, "hold"))
    pid = int(await wait_for_file(pidfile, timeout=15))
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ")
        # what others can read (the argv) holds no secret; the environment is the owner's
        assert b"stdin-hold" in cmdline and SECRET.encode() not in cmdline
        assert stat.S_IMODE(environ.stat().st_mode) & 0o077 == 0
        assert SECRET.encode() in environ.read_bytes()
    finally:
        (tmp_path / "hold.pid.go").touch()
    result = await task
    assert result is not None
    assert result["stdout_tail"] == "stdin=token={secret:TOKEN}\n"  # it got it, redacted here


def test_the_preview_shows_stdin_with_the_secret_as_a_placeholder(
    runbooks: Runbooks, tmp_path: Path
) -> None:
    subject = runbooks.load(HOLD.replace("@PIDFILE@", str(tmp_path / "p")))
    preview = subject.preview("hold", {})
    assert preview is not None
    assert "stdin: 'token={secret:TOKEN}'" in preview.splitlines()
    assert "env: TOKEN='{secret:TOKEN}'" in preview.splitlines()


async def test_without_stdin_the_program_reads_end_of_file(
    runbooks: Runbooks, tmp_path: Path
) -> None:
    subject = runbooks.load(
        HOLD.replace("@PIDFILE@", str(tmp_path / "p"))
        .replace('stdin = "token={secret:TOKEN}"\n', "")
        .replace('env = { TOKEN = "{secret:TOKEN}" }\n', "")
    )
    (tmp_path / "p.go").touch()
    result = await runbooks.execute(subject, "hold")
    assert result is not None and result["stdout_tail"] == "stdin=\n"
