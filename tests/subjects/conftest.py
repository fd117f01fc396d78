"""Fixtures for the runbook subjects: runbook files in tmp_path, a fixture program, a real
HTTP server on 127.0.0.1, and helpers to run actions through the real engine."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from operator_core.model.types import ActionProposal, ActionStatus, Ticket
from operator_core.subjects.base import ExecutionContext
from operator_core.subjects.runbook import RunbookSubject

TOOL = Path(__file__).parent / "fixtures" / "tool.py"
PY = sys.executable
TERMINAL = (ActionStatus.COMPLETED, ActionStatus.FAILED, ActionStatus.CANCELLED)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test touches the real ~/.local/state or sees the developer's secrets."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for name in list(os.environ):
        if name.startswith(("OPERATOR_SECRET", "OPERATOR_APPROVAL", "OPERATOR_FOUR_EYES")):
            monkeypatch.delenv(name)
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)  # requests go to 127.0.0.1 directly


def toml_str(value: str) -> str:
    return json.dumps(value)


@dataclass
class Runbooks:
    """Writes runbook files and runs their actions."""

    tmp_path: Path
    count: int = 0

    def write(self, text: str) -> Path:
        self.count += 1
        path = self.tmp_path / f"runbook{self.count}.toml"
        text = (
            textwrap.dedent(text)
            .replace("@PY@", toml_str(PY))
            .replace("@TOOL@", toml_str(str(TOOL)))
        )
        path.write_text(text)
        return path

    def load(self, text: str) -> RunbookSubject:
        return RunbookSubject(self.write(text), "runbook")

    @staticmethod
    def context(
        subject: RunbookSubject,
        action: str,
        params: dict[str, Any] | None = None,
        ticket: Ticket | None = None,
    ) -> ExecutionContext:
        definition = subject.actions[action].definition
        proposal = ActionProposal(id=1, action_name=action, parameters=params or {}, reason="test")
        return ExecutionContext(
            proposal=proposal, attempt=1, timeout_seconds=definition.timeout_seconds, ticket=ticket
        )

    async def execute(
        self,
        subject: RunbookSubject,
        action: str,
        params: dict[str, Any] | None = None,
        ticket: Ticket | None = None,
    ) -> dict[str, Any] | None:
        """Run like the executor does: inside the definition's hard timeout."""
        ctx = self.context(subject, action, params, ticket)
        async with asyncio.timeout(ctx.timeout_seconds):
            return await subject.execute(action, dict(params or {}), ctx)


@pytest.fixture
def runbooks(tmp_path: Path) -> Runbooks:
    return Runbooks(tmp_path)


# ---------------------------------------------------------------- HTTP server


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpServer:
    url: str
    requests: list[Seen] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    expected_auth: dict[str, str] = field(default_factory=dict)
    slow_seconds: float = 1.0


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        state: HttpServer = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, dict(self.headers.items()), body)
        state.requests.append(seen)
        route = self.path.split("?")[0].split("/")[1]
        state.hits[route] = state.hits.get(route, 0) + 1
        echo = json.dumps(
            {
                "method": seen.method,
                "path": seen.path,
                "headers": seen.headers,
                "body": body.decode("utf-8", "replace"),
            }
        ).encode()
        if route == "raw":
            # /raw/STATUS: the request as received (line, headers, body), unescaped,
            # after the Authorization value. An X-Pad header puts that many bytes before
            # it: dots, then its credentials again and again.
            pad = int(self.headers.get("X-Pad") or 0)
            auth = self.headers.get("Authorization", "").encode("latin-1")
            again = auth.partition(b" ")[2] + b"\n"
            repeats = pad // len(again)
            filler = b"." * (pad - repeats * len(again)) + again * repeats
            parts = self.path.split("?")[0].split("/")
            status = int(parts[2]) if len(parts) > 2 and parts[2] else 200
            request = self.requestline.encode("latin-1") + b"\n" + bytes(self.headers)
            raw = filler + auth + b"\n" + request + body
            self._reply(status, raw, {"X-Echo": "raw"})
        elif route == "ok":
            self._reply(200, b'{"ok": true}')
        elif route == "created":
            self._reply(201, b'{"id": 7}')
        elif route == "echo":
            self._reply(200, echo)
        elif route == "flaky":
            self._reply(500 if state.hits[route] == 1 else 200, echo)
        elif route == "down":
            self._reply(503, echo)
        elif route == "missing":
            self._reply(404, echo)
        elif route == "slow":
            time.sleep(state.slow_seconds)
            self._reply(200, b"{}")
        elif route == "big":
            self._reply(200, b"[" + b"1234567890," * 20000 + b"0]")
        elif route == "redirect":
            self._reply(302, b"", {"Location": "/ok"})
        elif route == "auth":
            ok = all(self.headers.get(k) == v for k, v in state.expected_auth.items())
            self._reply(200 if ok else 401, echo)
        else:
            self._reply(404, b"{}")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False
    state = HttpServer(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
