"""The demo subject: a simulated key-value cluster of stores, regions and leaders.

Used by ``operator demo`` and the tests. ``restart_store`` is slow and fails at a
configurable rate so retries show; the rest are quick. Environment knobs:
OPERATOR_DEMO_FAILURE_RATE (default 0.3) and OPERATOR_DEMO_SPEED (default 1.0; 10 runs ten
times faster).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from operator_core.actions.definitions import (
    ActionDefinition,
    ExecutionBudget,
    ParamDef,
    RiskLevel,
)
from operator_core.actions.subject import BaseSubject, ExecutionContext
from operator_core.env import env_number
from operator_core.errors import ActionFailed


@dataclass
class Store:
    id: str
    up: bool = True
    draining: bool = False
    restarts: int = 0


@dataclass
class Cluster:
    stores: dict[str, Store] = field(default_factory=dict)
    leaders: dict[int, str] = field(default_factory=dict)

    @classmethod
    def build(cls, stores: int = 5, regions: int = 24) -> Cluster:
        c = cls({f"s{i}": Store(f"s{i}") for i in range(1, stores + 1)})
        ids = list(c.stores)
        c.leaders = {r: ids[(r - 1) % len(ids)] for r in range(1, regions + 1)}
        return c


def store_key(store_id: str) -> str:
    """The cluster's key of a store given as "s2" or "2" (no leading zeros: "02" is "s2")."""
    digits = store_id.removeprefix("s")
    return f"s{int(digits)}" if digits.isdigit() else store_id


class DemoSubject(BaseSubject):
    name = "demo"

    def __init__(
        self,
        failure_rate: float | None = None,
        speed: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.failure_rate = (
            failure_rate
            if failure_rate is not None
            else env_number("OPERATOR_DEMO_FAILURE_RATE", 0.3, low=0, high=1)
        )
        self.speed = (
            speed
            if speed is not None
            else env_number("OPERATOR_DEMO_SPEED", 1.0, low=0, high=1000, low_open=True)
        )
        self._rng = random.Random(seed)
        self.cluster = Cluster.build()

    def action_definitions(self) -> list[ActionDefinition]:
        # The system the demo imitates numbers its stores: "2" and "s2" name the same one.
        store = ParamDef(type="str", description="Store id: s2, or 2", pattern=r"s?[0-9]+")
        return [
            ActionDefinition(
                name="transfer_leader",
                description="Move the leader of a region to another store",
                parameters={
                    "region_id": ParamDef(type="int", description="Region to move"),
                    "to_store_id": store,
                },
                risk_level=RiskLevel.MEDIUM,
                timeout_seconds=10,
            ),
            ActionDefinition(
                name="drain_store",
                description="Move every leader off a store and stop scheduling onto it",
                parameters={"store_id": store},
                risk_level=RiskLevel.HIGH,
                requires_approval=True,
                timeout_seconds=30,
                # A drained store serves nothing: never more than two an hour, whoever asks.
                budget=ExecutionBudget(runs=2, per_seconds=3600),
            ),
            ActionDefinition(
                name="restart_store",
                description="Restart a store process (slow; sometimes fails)",
                parameters={"store_id": store},
                risk_level=RiskLevel.HIGH,
                timeout_seconds=30,
                max_retries=3,
            ),
            ActionDefinition(
                name="check_health",
                description="Report store and leader health",
                risk_level=RiskLevel.LOW,
                timeout_seconds=5,
            ),
        ]

    def preview(self, action_name: str, parameters: dict[str, Any]) -> str | None:
        args = ", ".join(f"{k}={v!r}" for k, v in parameters.items())
        return f"demo cluster: {action_name}({args})"

    async def _work(self, low: float, high: float) -> None:
        await asyncio.sleep(self._rng.uniform(low, high) / max(self.speed, 1e-6))

    def _store(self, store_id: str) -> Store:
        store = self.cluster.stores.get(store_key(store_id))
        if store is None:
            raise ActionFailed(f"store {store_id} does not exist", retryable=False)
        return store

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any] | None:
        handler = getattr(self, f"_do_{action_name}", None)
        if handler is None:
            raise ActionFailed(f"demo subject has no action {action_name}", retryable=False)
        result: dict[str, Any] = await handler(**parameters)
        return result

    async def _do_transfer_leader(self, region_id: int, to_store_id: str) -> dict[str, Any]:
        await self._work(0.2, 0.8)
        if region_id not in self.cluster.leaders:
            raise ActionFailed(f"region {region_id} does not exist", retryable=False)
        store = self._store(to_store_id)
        if not store.up:
            raise ActionFailed(f"store {to_store_id} is down")
        if store.draining:
            raise ActionFailed(f"store {to_store_id} is draining", retryable=False)
        old = self.cluster.leaders[region_id]
        self.cluster.leaders[region_id] = store.id
        return {"region_id": region_id, "from_store": old, "to_store": store.id}

    async def _do_drain_store(self, store_id: str) -> dict[str, Any]:
        store = self._store(store_id)
        await self._work(1.0, 2.0)
        store.draining = True
        targets = [s.id for s in self.cluster.stores.values() if s.up and not s.draining]
        if not targets:
            raise ActionFailed("no healthy store left to move leaders to", retryable=False)
        moved = 0
        for region, leader in self.cluster.leaders.items():
            if leader == store.id:
                self.cluster.leaders[region] = targets[moved % len(targets)]
                moved += 1
        return {"store_id": store.id, "leaders_moved": moved}

    async def _do_restart_store(self, store_id: str) -> dict[str, Any]:
        store = self._store(store_id)
        await self._work(2.0, 4.0)
        if self._rng.random() < self.failure_rate:
            raise ActionFailed(f"store {store_id} did not come back within the health check")
        store.up = True
        store.restarts += 1
        return {"store_id": store.id, "restarts": store.restarts}

    async def _do_check_health(self) -> dict[str, Any]:
        await self._work(0.05, 0.2)
        down = [s.id for s in self.cluster.stores.values() if not s.up]
        draining = [s.id for s in self.cluster.stores.values() if s.draining]
        per_store: dict[str, int] = {}
        for leader in self.cluster.leaders.values():
            per_store[leader] = per_store.get(leader, 0) + 1
        return {"down": down, "draining": draining, "leaders_per_store": per_store}
