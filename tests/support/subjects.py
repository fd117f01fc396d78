"""A controllable subject for tests: outcomes decided by parameters, attempts visible in the
records. Importable as ``tests.support.subjects:TestSubject`` by runner subprocesses."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from operator_core.actions.registry import ActionDefinition, ParamDef, RiskLevel
from operator_core.errors import ActionFailed
from operator_core.subjects.base import BaseSubject, ExecutionContext


class TestSubject(BaseSubject):
    __test__ = False  # not a pytest test class
    name = "test"

    def action_definitions(self) -> list[ActionDefinition]:
        seconds = ParamDef(type="float", required=False, default=0.0)
        return [
            ActionDefinition(
                name="ok",
                description="succeeds",
                parameters={"seconds": seconds},
                risk_level=RiskLevel.LOW,
                timeout_seconds=30,
            ),
            ActionDefinition(
                name="fail", description="always fails (retryable)", timeout_seconds=5
            ),
            ActionDefinition(
                name="fail_hard", description="fails, not retryable", timeout_seconds=5
            ),
            ActionDefinition(
                name="flaky",
                description="fails the first `times` attempts",
                parameters={"times": ParamDef(type="int")},
                timeout_seconds=5,
            ),
            ActionDefinition(
                name="slow",
                description="sleeps `seconds`",
                parameters={"seconds": ParamDef(type="float")},
                timeout_seconds=float(os.environ.get("TEST_SLOW_TIMEOUT", 60)),
            ),
            ActionDefinition(
                name="guarded",
                description="always needs approval",
                requires_approval=True,
                risk_level=RiskLevel.HIGH,
            ),
        ]

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any] | None:
        if action_name in ("ok", "guarded"):
            await asyncio.sleep(parameters.get("seconds", 0.0))
            return {"ok": True, "attempt": context.attempt}
        if action_name == "fail":
            raise ActionFailed(f"boom on attempt {context.attempt}")
        if action_name == "fail_hard":
            raise ActionFailed("permanent failure", retryable=False)
        if action_name == "flaky":
            if context.attempt <= parameters["times"]:
                raise ActionFailed(f"flaky failure {context.attempt}")
            return {"attempt": context.attempt}
        if action_name == "slow":
            await asyncio.sleep(parameters["seconds"])
            return {"slept": parameters["seconds"]}
        raise ActionFailed(f"unknown {action_name}", retryable=False)
