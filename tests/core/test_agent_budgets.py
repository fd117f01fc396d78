"""Agents' proposal budgets in the engine, with a frozen clock: the window slides, the
wait is exact, a workflow counts its steps, a zero budget refuses everything, and a
refusal stores nothing but its audit event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from operator_core.actions.definitions import ActionDefinition
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.clock import FrozenClock
from operator_core.db.agent_budgets import AgentBudgetError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AGENT = "agent:claude"


@pytest.fixture
async def ex(db_path: Path) -> ActionExecutor:
    registry = ActionRegistry([ActionDefinition(name="look"), ActionDefinition(name="fix")])
    executor = ActionExecutor(db_path, registry, clock=FrozenClock(T0), approval_mode=False)
    await executor.open()
    yield executor  # type: ignore[misc]
    await executor.close()


def _advance(ex: ActionExecutor, seconds: float) -> None:
    clock = ex.db.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(seconds)


async def _count(ex: ActionExecutor) -> int:
    return len(await ex.db.list_proposals_by(AGENT, 100))


async def test_the_window_slides_and_the_wait_is_exact(ex: ActionExecutor) -> None:
    await ex.set_agent_budget("claude", 2, 600, [], "ana")
    await ex.propose_action("look", {}, "one", proposed_by=AGENT)
    _advance(ex, 100)
    await ex.propose_action("look", {}, "two", proposed_by=AGENT)
    _advance(ex, 308)
    with pytest.raises(
        AgentBudgetError, match=r"^agent claude: 2 of 2 proposals per 10m used; next in 3m12s$"
    ):
        await ex.propose_action("look", {}, "three", proposed_by=AGENT)
    _advance(ex, 192)  # the first leaves the window
    await ex.propose_action("look", {}, "three", proposed_by=AGENT)
    assert await _count(ex) == 3
    (listed,) = await ex.agent_budgets()
    assert (listed.used, listed.next_at) == (2, T0.replace(minute=11, second=40))


async def test_a_workflow_counts_its_steps_and_is_refused_whole(ex: ActionExecutor) -> None:
    await ex.set_agent_budget("claude", 3, 600, [], "ana")
    steps = [{"action_name": "look"}, {"action_name": "fix"}]
    await ex.propose_workflow("wf", "d", steps, proposed_by=AGENT)
    with pytest.raises(AgentBudgetError, match="2 of 3 proposals per 10m used"):
        await ex.propose_workflow("wf2", "d", steps, proposed_by=AGENT)
    with pytest.raises(AgentBudgetError, match="4 proposals at once .* exceed its budget"):
        await ex.propose_workflow("big", "d", steps * 2, proposed_by=AGENT)
    assert await _count(ex) == 2
    assert len(await ex.db.list_workflows(limit=10)) == 1


async def test_a_zero_budget_refuses_everything_and_lists_cleanly(ex: ActionExecutor) -> None:
    await ex.propose_action("look", {}, "before", proposed_by=AGENT)
    await ex.set_agent_budget("claude", 0, 600, [], "ana")
    with pytest.raises(AgentBudgetError, match="its budget allows no proposals"):
        await ex.propose_action("look", {}, "after", proposed_by=AGENT)
    (listed,) = await ex.agent_budgets()
    assert (listed.used, listed.next_at, listed.limit_text()) == (1, None, "0 per 10m")


async def test_the_agents_identity_counts_whatever_its_label(db_path: Path) -> None:
    """operator mcp's executor acts as agent:NAME@host: its own budget applies."""
    from operator_core.agents.gateway import agent_identity

    registry = ActionRegistry([ActionDefinition(name="look")])
    async with ActionExecutor(db_path, registry, approval_mode=False) as admin:
        await admin.set_agent_budget("claude", 5, 600, ["look"], "ana")
    agent = ActionExecutor(
        db_path,
        ActionRegistry([ActionDefinition(name="look"), ActionDefinition(name="fix")]),
        identity=agent_identity("claude"),
    )
    async with agent:
        with pytest.raises(AgentBudgetError, match="may not propose fix"):
            await agent.propose_action("fix", {}, "x", proposed_by="someone-else")
        await agent.propose_actions([{"action_name": "look", "reason": "ok"}], proposed_by="x")
