"""Runbook ``command`` actions: an argv run without a shell, in its own process group.

The command runs under a small supervisor (``supervisor.py``) started in a new session, so
the supervisor leads one process group holding the command and everything it spawns. A
timeout, the kill switch, a cancel or a runner shutdown terminates that group (SIGTERM, then
SIGKILL after the grace period), and so does a normal exit when it left children behind.
If the runner itself dies (even by SIGKILL) the supervisor sees its end of a socket pair
close and ends the group: nothing outlives the attempt or its runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operator_core.actions.subject import ProcessInfo
from operator_core.errors import ActionFailed
from operator_core.safe_text import visible
from operator_core.secrets import ENV_PREFIX, KEY_ENV, KEY_FILE_ENV, Redactor
from operator_core.subjects import supervisor
from operator_core.subjects.process_groups import host_name, start_token
from operator_core.subjects.templates import RenderContext, Template, render

TAIL_BYTES = 4096
# How long to read what is left in the pipes once the process group is gone (a process that
# escaped the group could hold them open).
_DRAIN_SECONDS = 0.5
# The supervisor runs isolated (-I: no PYTHON* variables, no user site) and without site
# (-S): only the standard library's built-ins, so the command's environment cannot change it.
_SUPERVISOR = (sys.executable, "-I", "-S", supervisor.__file__)


@dataclass(frozen=True)
class CommandSpec:
    argv: tuple[Template, ...]
    cwd: Path
    env: dict[str, Template]
    timeout: float
    kill_grace: float
    # Written to the program's standard input, then closed (None: stdin is /dev/null).
    stdin: Template | None = None

    @property
    def secrets(self) -> list[str]:
        templates = (*self.argv, *self.env.values(), *([self.stdin] if self.stdin else []))
        return [s for t in templates for s in t.secrets]

    def render(self, ctx: RenderContext) -> tuple[list[str], dict[str, str]]:
        return [render(t, ctx) for t in self.argv], {k: render(t, ctx) for k, t in self.env.items()}

    def render_stdin(self, ctx: RenderContext) -> bytes | None:
        return None if self.stdin is None else render(self.stdin, ctx).encode()

    def preview(self, ctx: RenderContext) -> str:
        argv, env = self.render(ctx)
        # One line per part: a parameter's newline or escape sequence is shown, not obeyed.
        argv = [visible(a) for a in argv]
        lines = [shlex.join(argv), f"cwd: {visible(self.cwd)}"]
        if env:
            lines.append(
                "env: " + " ".join(f"{k}={shlex.quote(visible(v))}" for k, v in env.items())
            )
        if self.stdin is not None:
            lines.append(f"stdin: {visible(render(self.stdin, ctx))!r}")
        lines.append(f"timeout: {self.timeout:g}s")
        return "\n".join(lines)


class _Tail:
    """The last bytes of a stream, with room to redact a value cut at the boundary."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.buf = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        self.buf += data
        if len(self.buf) > self.keep:
            del self.buf[: len(self.buf) - self.keep]

    def text(self, redactor: Redactor) -> str:
        """The redacted tail: the buffer is redacted whole (its start masked for a secret
        cut there), then shortened between redacted pieces, never inside one."""
        data = bytes(self.buf)
        cut = self.total > len(data)
        if cut:  # a character cut in half at the start is not part of the tail
            skip = 0
            while skip < min(3, len(data)) and 0x80 <= data[skip] < 0xC0:
                skip += 1
            data = data[skip:]
        text, _ = redactor.tail(data.decode("utf-8", errors="replace"), TAIL_BYTES, cut_start=cut)
        return text


class _Collector(asyncio.SubprocessProtocol):
    """Keeps the output tails and says when the process exited. (``Process.wait()`` would
    also wait for the pipes to close, which a child left behind can hold open.)"""

    def __init__(self, keep: int) -> None:
        self.tails = {1: _Tail(keep), 2: _Tail(keep)}
        self.exited = asyncio.Event()
        self.drained = asyncio.Event()
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.tails[fd].feed(data if isinstance(data, bytes) else data.encode())

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if not self._open:
            self.drained.set()

    def process_exited(self) -> None:
        self.exited.set()


def _kill_spawned(spawn: asyncio.Future[tuple[asyncio.SubprocessTransport, _Collector]]) -> None:
    """Done-callback for a spawn whose caller was cancelled meanwhile: kill what it started."""
    if spawn.cancelled() or spawn.exception() is not None:
        return
    transport, _ = spawn.result()
    _killpg(transport.get_pid(), signal.SIGKILL)
    transport.close()


def _group_alive(pgid: int) -> bool:
    """True while a live (not zombie) process is in the group."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        return bool(supervisor.group_members(pgid))
    except OSError:  # no /proc: the signal reached someone, perhaps only a zombie
        return True


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _until_gone(pgid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while _group_alive(pgid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await asyncio.sleep(min(0.02, remaining))


async def terminate_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` for it to go, then SIGKILL what is left and
    wait (briefly) until it is gone. The SIGKILL is sent even if this task is cancelled
    again meanwhile."""
    _killpg(pgid, signal.SIGTERM)
    try:
        await _until_gone(pgid, grace)
    finally:
        _killpg(pgid, signal.SIGKILL)
    await _until_gone(pgid, 1.0)


def child_env(additions: dict[str, str]) -> dict[str, str]:
    """The runner's environment without Operator's secrets, plus the action's additions."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(ENV_PREFIX) and k not in (KEY_ENV, KEY_FILE_ENV)
    }
    env.update(additions)
    return env


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


def _feed_stdin(transport: asyncio.SubprocessTransport, data: bytes | None) -> None:
    """Hand ``data`` to the program's standard input and close it (asyncio writes it in
    the background; a program that exits without reading it loses nothing of ours)."""
    pipe = transport.get_pipe_transport(0)
    if data is None or pipe is None:
        return
    assert isinstance(pipe, asyncio.WriteTransport)
    pipe.write(data)
    pipe.close()


async def run_command(
    spec: CommandSpec,
    argv: list[str],
    env: dict[str, str],
    redactor: Redactor,
    stdin: bytes | None = None,
    *,
    on_start: Callable[[ProcessInfo], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Run once. Returns the record on exit code 0; raises ActionFailed (retryable) on a
    non-zero exit or the timeout. On cancellation the group is terminated and the
    CancelledError re-raised. ``stdin``: written to the program's standard input (secrets
    go there or into the environment, where other users cannot read them). ``on_start``
    hears where the command runs once it started."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    # The supervisor's line to us: it ends the group when our end closes (we died).
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    try:
        # Shielded: a cancel that lands while asyncio is still connecting the pipes must not
        # leave a started process behind (asyncio's own clean-up kills only the direct child).
        spawn = asyncio.ensure_future(
            loop.subprocess_exec(
                lambda: _Collector(TAIL_BYTES * 4 + 1024),
                *_SUPERVISOR,
                str(theirs.fileno()),
                f"{spec.kill_grace:g}",
                *argv,
                cwd=spec.cwd,
                env=child_env(env),
                stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        )
        try:
            transport, proto = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            spawn.add_done_callback(_kill_spawned)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({spawn}, timeout=5.0)
            raise
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in an argument
            raise _cannot_start(argv, exc, redactor) from None
        finally:
            theirs.close()
        return await _supervise(
            spec, argv, redactor, transport, proto, ours, started, on_start, stdin
        )
    finally:
        ours.close()


def _cannot_start(
    argv: list[str], exc: OSError | ValueError | str, redactor: Redactor
) -> ActionFailed:
    detail = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
    return ActionFailed(redactor.redact(f"cannot start {argv[0]!r}: {detail}"), retryable=False)


async def _started(
    line: socket.socket, pgid: int, on_start: Callable[[ProcessInfo], Awaitable[None]] | None
) -> str | None:
    """Read the supervisor's report: the command's pid (told to ``on_start``), or why it
    could not start (returned)."""
    loop = asyncio.get_running_loop()
    report = b""
    while not report.endswith(b"\n"):
        data = await loop.sock_recv(line, 256)
        if not data:
            return None  # the supervisor died before it could say (killed from outside)
        report += data
    text = report.decode(errors="replace").strip()
    if text.startswith("E"):
        return text[1:]
    if on_start is not None:
        await on_start(ProcessInfo(host_name(), int(text), pgid, start_token(pgid)))
    return None


async def _supervise(
    spec: CommandSpec,
    argv: list[str],
    redactor: Redactor,
    transport: asyncio.SubprocessTransport,
    proto: _Collector,
    line: socket.socket,
    started: float,
    on_start: Callable[[ProcessInfo], Awaitable[None]] | None,
    stdin: bytes | None,
) -> dict[str, Any]:
    pgid = transport.get_pid()
    _feed_stdin(transport, stdin)
    timed_out = False
    leftovers = False
    failed: str | None = None
    try:
        try:
            async with asyncio.timeout(spec.timeout):
                failed = await _started(line, pgid, on_start)
                await proto.exited.wait()
        except TimeoutError:
            timed_out = True
            await terminate_group(pgid, spec.kill_grace)
            await _wait(proto.exited, 1.0)
        if not timed_out and _group_alive(pgid):
            leftovers = True
            await terminate_group(pgid, spec.kill_grace)
        await _wait(proto.drained, _DRAIN_SECONDS)
    except asyncio.CancelledError:
        await terminate_group(pgid, spec.kill_grace)
        raise
    finally:
        transport.close()
    if failed is not None:
        raise _cannot_start(argv, failed, redactor)
    code = transport.get_returncode()
    out, err = proto.tails[1], proto.tails[2]
    record: dict[str, Any] = {
        "kind": "command",
        "argv": [redactor.redact(a) for a in argv],
        "exit_code": code,
        "duration_seconds": round(time.monotonic() - started, 3),
        "stdout_tail": out.text(redactor),
        "stderr_tail": err.text(redactor),
        "stdout_bytes": out.total,
        "stderr_bytes": err.total,
    }
    if leftovers:
        record["killed_leftover_processes"] = True
    if timed_out:
        record["timed_out"] = True
        raise ActionFailed(
            f"timed out after {spec.timeout:g}s; process group killed",
            retryable=True,
            result_data=record,
        )
    if code != 0:
        what = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        last = record["stderr_tail"].strip().splitlines()[-1:] or [""]
        detail = f": {last[0][:200]}" if last[0] else ""
        raise ActionFailed(
            f"command failed with {what}{detail}", retryable=True, result_data=record
        )
    return record
