"""Agents' proposal budgets and allow-lists, as the CLI sets, clears and lists them (the
check itself runs in the transaction that stores a proposal: ``db.agent_budgets``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from operator_core.actions.definitions import MAX_SECONDS
from operator_core.actions.executor_base import ExecutorBase
from operator_core.clock import span
from operator_core.db.agent_budgets import AgentBudget
from operator_core.errors import UnknownActionError, ValidationError
from operator_core.identity import check_agent_name

# The most proposals a budget may allow per window.
MAX_PROPOSALS = 1_000_000


class Budgeting(ExecutorBase):
    async def set_agent_budget(
        self,
        agent: str,
        max_proposals: int | None,
        per_seconds: float | None,
        allow: Sequence[str],
        actor: str,
    ) -> None:
        """Give ``agent`` at most ``max_proposals`` per ``per_seconds`` and only the actions
        in ``allow`` (empty: any), replacing what it had; audited."""
        check_agent_name(agent)
        if (max_proposals is None) != (per_seconds is None):
            raise ValidationError(
                "give --max-proposals and --per together (e.g. --max-proposals 5 --per 10m)",
                "per",
            )
        if max_proposals is None and not allow:
            raise ValidationError(
                "nothing to set: give --max-proposals N --per WINDOW, --allow ACTION, or both "
                "('operator agents unset NAME' removes a budget)",
                "agent",
            )
        if max_proposals is not None and not 0 <= max_proposals <= MAX_PROPOSALS:
            raise ValidationError(
                f"--max-proposals must be from 0 to {MAX_PROPOSALS:,}, not {max_proposals}",
                "max_proposals",
            )
        if per_seconds is not None and not (
            math.isfinite(per_seconds) and 0 < per_seconds <= MAX_SECONDS
        ):
            raise ValidationError(
                f"--per must be longer than zero and at most {span(MAX_SECONDS)}", "per"
            )
        for name in allow:
            if name not in self._registry:
                known = ", ".join(self._registry.list_action_names()) or "none"
                raise UnknownActionError(
                    f"--allow: unknown action {name!r} (available: {known})", "allow"
                )
        await self.db.set_agent_budget(agent, max_proposals, per_seconds, allow, actor)

    async def clear_agent_budget(self, agent: str, actor: str) -> bool:
        """Remove ``agent``'s budget and allow-list (audited); False if it had none."""
        check_agent_name(agent)
        return await self.db.clear_agent_budget(agent, actor)

    async def agent_budgets(self) -> list[AgentBudget]:
        """Every agent's budget, with its use in the current window."""
        return await self.db.list_agent_budgets()
