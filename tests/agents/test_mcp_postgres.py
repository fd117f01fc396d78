"""``operator mcp`` and ``operator agents`` on a PostgreSQL URL, with a real MCP client over
stdio: the agent lists, proposes, waits while a person approves through the CLI, a real
runner runs it, it reads the result; no tool approves; its budget and allow-list are
enforced and audited; the audit chain verifies."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from operator_core.agents.gateway import AgentGateway, agent_identity
from operator_core.db import audit
from operator_core.db.pg.connection import PgDatabase

from tests.agents.conftest import agent_env, call, call_error, free_port, serve_http, stop
from tests.agents.test_gateway import human, idle_wait_then_wake
from tests.backends import open_executor
from tests.e2e.conftest import SUBJECT

# Four-eyes on: a person must approve what the agent proposed, and may, being another.
SETTINGS = {"OPERATOR_FOUR_EYES": "on"}


def _argv(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "operator_core.cli", "--db", url, "--subject", SUBJECT, *args]


async def _cli(tmp_path: Path, url: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *_argv(url, *args),
        env=agent_env(tmp_path, **SETTINGS),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (args, err.decode())
    return out.decode()


@asynccontextmanager
async def _session(tmp_path: Path, url: str, agent: str) -> AsyncIterator[ClientSession]:
    argv = _argv(url, "mcp", "--agent", agent)
    env = agent_env(tmp_path, **SETTINGS)
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    with (tmp_path / "mcp-stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def _rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql, params)]  # type: ignore[arg-type]


async def test_an_agent_proposes_waits_and_reads_its_result_on_postgres(
    tmp_path: Path, pg_url: str
) -> None:
    await _cli(tmp_path, pg_url, "agents", "set", "bot", "--max-proposals", "2", "--per", "10m")
    await _cli(tmp_path, pg_url, "agents", "set", "idle", "--allow", "ok")
    async with _session(tmp_path, pg_url, "bot") as session:
        catalog = await call(session, "list_actions")
        assert any(a["name"] == "ok" and a["approval_required"] for a in catalog["actions"])
        assert catalog["kill_switch"]["engaged"] is False
        ticket = await call(session, "open_ticket", title="disk filling on db-1", severity="high")
        proposed = await call(
            session,
            "propose_action",
            action="ok",
            parameters={"seconds": "0"},
            reason="free space",
            ticket_id=ticket["ticket"]["id"],
        )
        pid = proposed["proposal"]["id"]
        assert proposed["proposal"]["proposed_by"] == "agent:bot"
        assert proposed["proposal"]["awaiting_approval"] is True
        # No tool approves: asking for one is a tool error, and the proposal still waits.
        for name in ("approve", "approve_proposal", "run", "execute_proposal"):
            assert name in await call_error(session, name, id=pid)
        pending = await call(session, "wait_for_decision", id=pid, timeout_seconds=0.3)
        assert pending["decision"] == "pending"

        # A person approves through the CLI while the agent waits (the wait polls the chain).
        waiting = asyncio.create_task(
            session.call_tool("wait_for_decision", {"id": pid, "timeout_seconds": 30})
        )
        await asyncio.sleep(1.0)
        assert not waiting.done()
        await _cli(tmp_path, pg_url, "approve", str(pid))
        decided = await asyncio.wait_for(waiting, 15)
        assert not decided.is_error and decided.structured_content is not None
        assert decided.structured_content["decision"] == "approved"

        before = await call(session, "get_result", id=pid)
        assert before["attempts"] == [] and before["finished"] is False
        await _cli(tmp_path, pg_url, "run", "--until-idle")
        after = await call(session, "get_result", id=pid)
        assert after["finished"] is True and after["succeeded"] is True
        mine = await session.read_resource("operator://proposals/mine")
        assert f'"id": {pid}' in mine.contents[0].text  # type: ignore[union-attr]

        # The budget: one more fits, the third is refused, and the server serves on.
        await call(session, "propose_action", action="ok", parameters={}, reason="second")
        text = await call_error(session, "propose_action", action="ok", parameters={}, reason="3")
        assert "agent bot: 2 of 2 proposals per 10m used; next in " in text, text
        assert (await call(session, "list_actions"))["actions"]

    async with _session(tmp_path, pg_url, "idle") as session:
        text = await call_error(
            session, "propose_action", action="flaky", parameters={"times": 1}, reason="x"
        )
        assert "agent idle: may not propose flaky" in text, text

    listed = json.loads(await _cli(tmp_path, pg_url, "agents", "list", "--json"))
    assert [(b["agent"], b["max_proposals"], b["used"], b["allow"]) for b in listed] == [
        ("bot", 2, 2, []),
        ("idle", None, 0, ["ok"]),
    ]
    assert (await _cli(tmp_path, pg_url, "agents", "unset", "idle")).startswith(
        "agent idle: budget removed"
    )
    assert (await _cli(tmp_path, pg_url, "agents", "unset", "idle")).endswith("had no budget\n")
    table = await _cli(tmp_path, pg_url, "agents", "list")
    assert table.splitlines()[1].split()[:3] == ["bot", "2", "per"]

    proposals = _rows(
        pg_url,
        "SELECT id, proposed_by, proposed_identity, approved_identity, status"
        " FROM action_proposals ORDER BY id",
    )
    assert [(p[0], p[1], p[4]) for p in proposals] == [
        (pid, "agent:bot", "completed"),
        (pid + 1, "agent:bot", "validated"),
    ]
    assert proposals[0][2].startswith("agent:bot@")
    assert not proposals[0][3].startswith("agent:")  # a person approved, not the agent
    events = _rows(pg_url, "SELECT event_type, actor FROM action_audit_log ORDER BY id")
    refused = [actor for kind, actor in events if kind == "agent_proposal_refused"]
    assert len(refused) == 2 and all(actor.startswith("agent:") for actor in refused)
    kinds = [kind for kind, _ in events]
    assert kinds.count("agent_budget_set") == 2 and kinds.count("agent_budget_cleared") == 1

    async def verify() -> tuple[bool, int, str]:
        db = PgDatabase(pg_url)
        try:
            return await db.read(audit.verify_chain)
        finally:
            await db.close()

    ok, count, message = await verify()
    assert ok and count == len(events), message


async def test_an_idle_wait_sleeps_on_notify_on_postgres(pg_url: str) -> None:
    """As on SQLite (test_gateway.py): the wait's wake-up is the NOTIFY of another
    connection's commit, and an idle wait re-reads the server a few times at most."""
    agent = open_executor(pg_url, approval_mode=True, identity=agent_identity("bot"))
    person = open_executor(pg_url, approval_mode=True, identity=human())
    await agent.open()
    await person.open()
    try:
        await idle_wait_then_wake(AgentGateway(agent, "bot"), person)
    finally:
        await agent.close()
        await person.close()


async def test_the_http_transport_serves_a_postgres_database(tmp_path: Path, pg_url: str) -> None:
    port = free_port()
    proc = await asyncio.to_thread(_start_http, tmp_path, pg_url, port)
    try:
        async with (
            streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            proposed = await call(session, "propose_action", action="ok", parameters={}, reason="r")
            pid = proposed["proposal"]["id"]
            got = await call(session, "get_proposal", id=pid)
            assert got["proposal"]["proposed_by"] == "agent:web" and got["decision"] is None
    finally:
        await asyncio.to_thread(stop, proc)
    assert _rows(pg_url, "SELECT proposed_by, status FROM action_proposals") == [
        ("agent:web", "validated")
    ]


def _start_http(tmp_path: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    """``operator mcp --http`` on the URL, once it accepts connections."""
    argv = _argv(url, "mcp", "--agent", "web", "--http", f"127.0.0.1:{port}")
    proc: subprocess.Popen[bytes] = serve_http(argv, tmp_path, port, SETTINGS)
    return proc
