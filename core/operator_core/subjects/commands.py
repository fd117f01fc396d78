"""Runbook ``command`` actions: an argv run without a shell, in its own process group.

The command gets its own session (``start_new_session``), so everything it spawns shares
one process group; a timeout, the kill switch, a cancel or a runner shutdown terminates that
group (SIGTERM, then SIGKILL after the grace period), and so does a normal exit when it
left children behind. Nothing outlives the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operator_core.errors import ActionFailed
from operator_core.safe_text import visible
from operator_core.secrets import ENV_PREFIX, KEY_ENV, KEY_FILE_ENV, Redactor
from operator_core.subjects.templates import RenderContext, Template, render

TAIL_BYTES = 4096
# How long to read what is left in the pipes once the process group is gone (a process that
# escaped the group could hold them open).
_DRAIN_SECONDS = 0.5


@dataclass(frozen=True)
class CommandSpec:
    argv: tuple[Template, ...]
    cwd: Path
    env: dict[str, Template]
    timeout: float
    kill_grace: float

    @property
    def secrets(self) -> list[str]:
        return [s for t in (*self.argv, *self.env.values()) for s in t.secrets]

    def render(self, ctx: RenderContext) -> tuple[list[str], dict[str, str]]:
        return [render(t, ctx) for t in self.argv], {k: render(t, ctx) for k, t in self.env.items()}

    def preview(self, ctx: RenderContext) -> str:
        argv, env = self.render(ctx)
        # One line per part: a parameter's newline or escape sequence is shown, not obeyed.
        argv = [visible(a) for a in argv]
        lines = [shlex.join(argv), f"cwd: {visible(self.cwd)}"]
        if env:
            lines.append(
                "env: " + " ".join(f"{k}={shlex.quote(visible(v))}" for k, v in env.items())
            )
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
        text = redactor.redact(self.buf.decode("utf-8", errors="replace"))
        cut = self.total > len(self.buf) or len(text) > TAIL_BYTES
        return redactor.redact_tail(text[-TAIL_BYTES:], cut)


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
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


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


async def run_command(
    spec: CommandSpec, argv: list[str], env: dict[str, str], redactor: Redactor
) -> dict[str, Any]:
    """Run once. Returns the record on exit code 0; raises ActionFailed (retryable) on a
    non-zero exit or the timeout. On cancellation the group is terminated and the
    CancelledError re-raised."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    # Shielded: a cancel that lands while asyncio is still connecting the pipes must not
    # leave a started process behind (asyncio's own clean-up kills only the direct child).
    spawn = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: _Collector(TAIL_BYTES * 4 + 1024),
            *argv,
            cwd=spec.cwd,
            env=child_env(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
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
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ActionFailed(
            redactor.redact(f"cannot start {argv[0]!r}: {detail}"), retryable=False
        ) from None
    pgid = transport.get_pid()
    timed_out = False
    leftovers = False
    try:
        try:
            async with asyncio.timeout(spec.timeout):
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
