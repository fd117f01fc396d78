"""Budgets as ``ActionDB`` offers them: the execution budgets spent now, and the agents'
proposal budgets (set, cleared, listed with their use), each one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from operator_core.db import agent_budgets, budgets
from operator_core.db.agent_budgets import AgentBudget
from operator_core.db.budgets import BudgetWait
from operator_core.db.connection import Store


class BudgetOps(Store):
    async def budget_waits(self) -> dict[str, BudgetWait]:
        """Each action whose execution budget is spent now, with its next slot."""
        now = self.clock.now()

        def fn(conn: sqlite3.Connection) -> dict[str, BudgetWait]:
            return budgets.waits(conn, now)

        return await self._call(fn)

    async def set_agent_budget(
        self,
        agent: str,
        max_proposals: int | None,
        per_seconds: float | None,
        allow: Sequence[str],
        actor: str,
    ) -> None:
        await self._write(
            agent_budgets.set_budget, agent, max_proposals, per_seconds, allow, actor, self._now()
        )

    async def clear_agent_budget(self, agent: str, actor: str) -> bool:
        return await self._write(agent_budgets.clear_budget, agent, actor, self._now())

    async def list_agent_budgets(self) -> list[AgentBudget]:
        now = self.clock.now()

        def fn(conn: sqlite3.Connection) -> list[AgentBudget]:
            return agent_budgets.list_budgets(conn, now)

        return await self._call(fn)
