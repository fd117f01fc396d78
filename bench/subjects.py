"""A subject that does nothing, so the benchmarks measure the engine and not the world.

Load it as ``--subject bench.subjects:NoopSubject``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from operator_core.actions.registry import ActionDefinition, ParamDef, RiskLevel
from operator_core.subjects.base import BaseSubject, ExecutionContext


class NoopSubject(BaseSubject):
    """``noop`` returns at once; ``sleep`` waits ``seconds`` (cancellable, for the kill
    switch benchmark)."""

    name = "bench"

    def action_definitions(self) -> list[ActionDefinition]:
        return [
            ActionDefinition(
                name="noop",
                description="does nothing",
                risk_level=RiskLevel.LOW,
                timeout_seconds=30,
            ),
            ActionDefinition(
                name="sleep",
                description="sleeps `seconds`",
                parameters={"seconds": ParamDef(type="float")},
                risk_level=RiskLevel.LOW,
                timeout_seconds=600,
            ),
        ]

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any] | None:
        if action_name == "sleep":
            await asyncio.sleep(parameters["seconds"])
        return None
