"""No sequence of MCP calls approves, rejects, resumes or executes anything: the package
never calls those executor methods, and every tool, fed hostile input, leaves a proposal
waiting for a human."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.agents.conftest import agent_env, call, call_error, stdio_session
from tests.e2e.conftest import REPO, run_cli

AGENT_CODE = [
    *sorted((REPO / "core" / "operator_core" / "agents").glob("*.py")),
    REPO / "core" / "operator_core" / "cli" / "agents.py",
]
# The executor's (and its database's) methods that decide, resume, stop or run work.
FORBIDDEN = re.compile(
    r"\.(decide|approve\w*|reject\w*|cancel\w*|resume|kill_switch|set_mode|set_policy"
    r"|execute_proposal|run_claim|perform|schedule_next_retry|expire_due|claim\w*)\s*\("
)


def test_agent_code_never_calls_deciding_or_executing_methods() -> None:
    assert len(AGENT_CODE) >= 4
    for path in AGENT_CODE:
        hits = FORBIDDEN.findall(path.read_text())
        assert hits == [], f"{path.name} calls {hits}"


def state(db: Path) -> list[tuple[object, ...]]:
    return (
        sqlite3.connect(db)
        .execute(
            "SELECT id, status, approved_at, rejected_at, claimed_by IS NULL"
            " FROM action_proposals ORDER BY id"
        )
        .fetchall()
    )


async def test_hostile_calls_on_every_tool_approve_and_run_nothing(tmp_path: Path) -> None:
    db = tmp_path / "hostile.db"
    async with stdio_session(db, "--agent", "mallory") as session:
        first = await call(session, "propose_action", action="ok", parameters={}, reason="r")
        pid = first["proposal"]["id"]
        wf = await call(
            session,
            "propose_workflow",
            name="w",
            description="two steps",
            steps=[{"action": "ok"}, {"action": "ok", "parameters": {"seconds": 0}}],
        )
        step = wf["steps"][0]["id"]

        for name in (
            "approve",
            "approve_proposal",
            "reject",
            "resume",
            "set_safety_mode",
            "kill_switch",
            "cancel",
            "run",
            "execute_proposal",
        ):
            assert name in await call_error(session, name, id=pid)
        hostile_ids = [0, -1, 2**63, "1; DROP TABLE action_proposals", 1.5, None, [pid]]
        for tool in ("get_proposal", "get_result", "wait_for_decision"):
            for bad in hostile_ids:
                await call_error(session, tool, id=bad)
        await call_error(session, "wait_for_decision", id=pid, timeout_seconds=-1)
        await call_error(
            session,
            "propose_action",
            action="ok",
            parameters={"approved": True},
            reason="sneak",
        )
        await call_error(
            session, "propose_action", action="ok", parameters=[], reason="list as params"
        )
        await call_error(
            session,
            "propose_action",
            action="ok",
            parameters={},
            reason="past",
            schedule_in_seconds=-5,
        )
        await call_error(session, "propose_workflow", name="w", description="d", steps=["ok", 5])
        await call_error(
            session,
            "propose_workflow",
            name="w",
            description="d",
            steps=[{"action": "ok"}, {"action": "nope"}],
        )
        await call_error(session, "open_ticket", title="", severity="apocalyptic")
        # Extra arguments that name a decision are ignored or refused, never obeyed.
        extra = await session.call_tool(
            "propose_action",
            {
                "action": "ok",
                "parameters": {},
                "reason": "with extras",
                "approved_by": "root@prod",
                "requires_approval": False,
            },
        )
        stored = 3
        if not extra.is_error:
            assert extra.structured_content["proposal"]["awaiting_approval"] is True
            stored += 1
        waited = await call(session, "wait_for_decision", id=pid, timeout_seconds=0.2)
        assert waited["decision"] == "pending"
        assert (await call(session, "get_proposal", id=step))["decision"] is None

    # A runner finds nothing it may run: nothing was approved.
    env = agent_env(tmp_path)
    ran = run_cli(db, "run", "--until-idle", env=env)
    assert ran.returncode == 0, ran.stderr
    rows = state(db)
    assert rows and all(r[1] == "validated" and r[2] is None and r[3] is None for r in rows)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM action_records").fetchone() == (0,)
    assert len(rows) == stored


async def test_every_answer_reports_the_kill_switch(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    async with stdio_session(db) as session:
        before = await call(session, "list_actions")
        assert before["kill_switch"]["engaged"] is False
        pid = (await call(session, "propose_action", action="ok", parameters={}, reason="r"))[
            "proposal"
        ]["id"]
        killed = run_cli(db, "kill-switch", "--yes", env=agent_env(tmp_path))
        assert killed.returncode == 0, killed.stderr
        for tool, args in (
            ("list_actions", {}),
            ("get_proposal", {"id": pid}),
            ("get_result", {"id": pid}),
            ("wait_for_decision", {"id": pid, "timeout_seconds": 1}),
        ):
            answer = await call(session, tool, **args)
            assert answer["kill_switch"]["engaged"] is True, tool
        waited = await call(session, "wait_for_decision", id=pid, timeout_seconds=1)
        assert waited["decision"] == "cancelled"
        refused = await call_error(
            session, "propose_action", action="ok", parameters={}, reason="again"
        )
        assert "observe" in refused.lower() or "kill" in refused.lower()
        assert refused.endswith("[kill switch engaged: nothing runs]")
