"""A real MCP client session against ``operator mcp`` in a subprocess, on a real file."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import SUBJECT, cli_argv, cli_env


def agent_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Every action needs approval; the CLI's actor label is not the agent."""
    return cli_env(tmp_path, OPERATOR_APPROVAL_MODE="on", **extra)


def mcp_argv(db: Path, *args: str) -> list[str]:
    return cli_argv(db, "mcp", *args, subject=SUBJECT)


@asynccontextmanager
async def stdio_session(db: Path, *args: str, **env: str) -> AsyncIterator[ClientSession]:
    argv = mcp_argv(db, *args)
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=agent_env(db.parent, **env))
    with (db.parent / "mcp-stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_http_server(db: Path, port: int, args: tuple[str, ...], env: dict[str, str]) -> Any:
    """``operator mcp --http`` in the background, once it accepts connections."""
    argv = mcp_argv(db, "--http", f"127.0.0.1:{port}", *args)
    return serve_http(argv, db.parent, port, env)


def serve_http(argv: list[str], home: Path, port: int, env: dict[str, str]) -> Any:
    """Start ``argv`` (an ``operator mcp --http`` command line) in the background and return
    it once it accepts connections on ``port``; its output goes to ``home/mcp-http.log``."""
    log = home / "mcp-http.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=agent_env(home, **env), stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(log.read_text() or "server did not start") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@asynccontextmanager
async def http_session(db: Path, *args: str, **env: str) -> AsyncIterator[ClientSession]:
    proc = await asyncio.to_thread(start_http_server, db, free_port(), args, env)
    url = f"http://{proc.args[proc.args.index('--http') + 1]}/mcp"
    try:
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
    finally:
        await asyncio.to_thread(stop, proc)


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed; its JSON answer."""
    result = await session.call_tool(tool, arguments)
    text = "".join(getattr(c, "text", "") for c in result.content)
    assert not result.is_error, text
    data = result.structured_content or json.loads(text)
    assert "kill_switch" in data, data
    return data


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> str:
    """A tool call that must fail as a tool error; its text."""
    result = await session.call_tool(tool, arguments)
    text = "".join(getattr(c, "text", "") for c in result.content)
    assert result.is_error, text
    assert "Traceback" not in text
    return text
