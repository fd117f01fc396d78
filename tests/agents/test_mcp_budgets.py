"""An agent's budget as an MCP client meets it: a real ``operator mcp`` over stdio, its
proposals refused past the budget or outside the allow-list as tool errors that name the
budget, and the server serving on."""

from __future__ import annotations

from pathlib import Path

from tests.agents.conftest import call, call_error, stdio_session
from tests.e2e.conftest import query, run_cli


async def test_the_budget_and_the_allow_list_come_back_as_tool_errors(tmp_path: Path) -> None:
    db = tmp_path / "operator.db"
    done = run_cli(
        db, "agents", "set", "claude", "--max-proposals", "2", "--per", "10m", "--allow", "ok"
    )
    assert done.returncode == 0, done.stderr
    async with stdio_session(db, "--agent", "claude") as session:
        for i in range(2):
            await call(session, "propose_action", action="ok", parameters={}, reason=f"r{i}")
        text = await call_error(
            session, "propose_action", action="ok", parameters={}, reason="one more"
        )
        assert "agent claude: 2 of 2 proposals per 10m used; next in " in text, text
        text = await call_error(
            session, "propose_action", action="flaky", parameters={"times": 1}, reason="x"
        )
        assert "agent claude: may not propose flaky" in text, text
        assert (await call(session, "list_actions"))["actions"]  # still serving
    rows = query(db, "SELECT proposed_by FROM action_proposals")
    assert [r[0] for r in rows] == ["agent:claude", "agent:claude"]
    refused = query(
        db, "SELECT actor FROM action_audit_log WHERE event_type = 'agent_proposal_refused'"
    )
    assert len(refused) == 2 and all("agent:claude" in r[0] for r in refused)
