"""An agent's whole path over MCP: list, propose, wait while a human approves through the
CLI, a real runner runs it, read the result; over stdio and over streamable HTTP."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from mcp.client.session import ClientSession

from tests.agents.conftest import agent_env, call, call_error, http_session, stdio_session
from tests.e2e.conftest import run_cli

TOOLS = {
    "list_actions",
    "open_ticket",
    "propose_action",
    "propose_workflow",
    "get_proposal",
    "wait_for_decision",
    "get_result",
}


async def agent_path(session: ClientSession, db: Path) -> None:
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    schema = tools["propose_action"].input_schema
    assert "ok" in schema["properties"]["action"]["enum"]
    assert "50" in (tools["wait_for_decision"].description or "")

    catalog = await call(session, "list_actions")
    ok = next(a for a in catalog["actions"] if a["name"] == "ok")
    assert ok["approval_required"] is True
    assert ok["parameters"]["seconds"]["type"] == "float"
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
    assert proposed["proposal"]["parameters"] == {"seconds": 0.0}

    # Nothing decided yet: a short wait comes back pending.
    pending = await call(session, "wait_for_decision", id=pid, timeout_seconds=0.3)
    assert pending["decision"] == "pending"

    notes: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(progress)

    env = agent_env(db.parent, OPERATOR_FOUR_EYES="on")
    waiting = asyncio.create_task(
        session.call_tool(
            "wait_for_decision", {"id": pid, "timeout_seconds": 30}, progress_callback=on_progress
        )
    )
    await asyncio.sleep(1.5)
    assert not waiting.done()
    # A person approves through the real CLI; four-eyes sees the agent as the proposer.
    approved = await asyncio.to_thread(run_cli, db, "approve", str(pid), env=env)
    assert approved.returncode == 0, approved.stderr
    result = await asyncio.wait_for(waiting, 10)
    assert not result.is_error
    decision = result.structured_content
    assert decision is not None
    assert decision["decision"] == "approved"
    assert decision["waited_seconds"] < 10
    assert notes, "no progress notification while waiting"

    before = await call(session, "get_result", id=pid)
    assert before["attempts"] == [] and before["finished"] is False
    ran = await asyncio.to_thread(run_cli, db, "run", "--until-idle", env=env)
    assert ran.returncode == 0, ran.stderr
    after = await call(session, "get_result", id=pid)
    assert after["finished"] is True and after["succeeded"] is True
    assert [a["outcome"] for a in after["attempts"]] == ["succeeded"]

    mine = await session.read_resource("operator://proposals/mine")
    assert f'"id": {pid}' in mine.contents[0].text
    listed = await session.read_resource("operator://actions")
    assert '"name": "ok"' in listed.contents[0].text

    row = (
        sqlite3.connect(db)
        .execute(
            "SELECT proposed_by, proposed_identity, approved_identity FROM action_proposals"
            " WHERE id = ?",
            (pid,),
        )
        .fetchone()
    )
    assert row[0] == "agent:bot"
    assert row[1].startswith("agent:bot@")
    assert not row[2].startswith("agent:")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "agents.db"


async def test_agent_proposes_waits_and_reads_result_over_stdio(db: Path) -> None:
    async with stdio_session(db, "--agent", "bot", OPERATOR_FOUR_EYES="on") as session:
        await agent_path(session, db)


async def test_agent_proposes_waits_and_reads_result_over_http(db: Path) -> None:
    async with http_session(db, "--agent", "bot", OPERATOR_FOUR_EYES="on") as session:
        await agent_path(session, db)


async def test_bad_arguments_are_tool_errors_and_the_server_keeps_serving(db: Path) -> None:
    async with stdio_session(db) as session:
        text = await call_error(session, "propose_action", action="nope", parameters={}, reason="x")
        assert "unknown action 'nope'" in text
        assert text.endswith("[kill switch: off]")
        text = await call_error(
            session, "propose_action", action="flaky", parameters={"times": "many"}, reason="x"
        )
        assert "parameter 'times' must be an integer" in text
        text = await call_error(session, "propose_action", action="ok", parameters={}, reason=" ")
        assert "reason" in text
        text = await call_error(session, "get_proposal", id=999)
        assert "no action with id 999" in text
        text = await call_error(session, "propose_workflow", name="w", description="d", steps=[])
        assert "at least one action" in text
        # Still serving, and nothing was stored.
        good = await call(
            session, "propose_action", action="ok", parameters={}, reason="after errors"
        )
        assert good["proposal"]["id"] == 1
        assert good["proposal"]["proposed_by"] == "agent:mcp"
