"""A deterministic database for the Automations view's snapshots and screenshot: five
automations (one at version 2, one team-scoped, one disabled) and executions completed,
failed, cancelled and in flight (waiting on a delay, waiting for an approval).

Built through the executor and the runner's own automation step (``AutomationStep``) with a
FrozenClock, so every id and time is the same on every run. The dashboard is opened on it
with ``fixture_app`` at ``FIXTURE_NOW``.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.automation_runner import AutomationStep
from operator_core.clock import FrozenClock
from operator_core.db.automation_views import in_flight_and_recent
from operator_core.errors import OperatorError

from operator_tui.devtools.fixture import (
    FIXTURE_NOW,
    OPERATOR,
    OPERATOR_ACCOUNT,
    RUNNER,
    FixtureSubject,
)


def _definition(name: str, nodes: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    """Nodes that follow one another after a trigger node, unless ``edges`` is given."""
    all_nodes = [{"id": "trigger", "type": "trigger", "data": {}}, *nodes]
    edges = [
        {"id": f"e{i}", "source": a["id"], "target": b["id"]}
        for i, (a, b) in enumerate(zip(all_nodes, all_nodes[1:], strict=False))
    ]
    data: dict[str, Any] = {
        "name": name,
        "description": f"{name} (fixture)",
        "nodes": all_nodes,
        "edges": edges,
        "trigger": {"type": "incident_created"},
        "settings": {"timeout": "1h", "enabled": True},
    }
    data.update(top)
    return data


def _action(
    node_id: str,
    action: str,
    label: str = "",
    retry: dict[str, Any] | None = None,
    **parameters: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {"action": action, "name": label, "parameters": parameters}
    if retry is not None:
        data["retry"] = retry
    return {"id": node_id, "type": "action", "data": data}


def _delay(node_id: str, minutes: float) -> dict[str, Any]:
    return {"id": node_id, "type": "delay", "data": {"durationMinutes": minutes}}


HEALTH = _definition(
    "health-after-critical",
    [
        _action("first-check", "check_health", "Check now"),
        _delay("settle", 5),
        _action("second-check", "check_health", "Check again"),
    ],
    trigger={
        "type": "incident_created",
        "conditions": [{"field": "severity", "value": "critical"}],
    },
)
HEALTH_V2 = {**HEALTH, "nodes": [*HEALTH["nodes"][:2], _delay("settle", 10), HEALTH["nodes"][3]]}

DRAIN = _definition(
    "drain-flapping-store",
    [
        {"id": "is-high", "type": "condition", "data": {"field": "severity", "value": "high"}},
        _action("drain", "drain_store", "Drain s5", store_id="s5"),
        _action("check", "check_health"),
    ],
    edges=[
        {"id": "e0", "source": "trigger", "target": "is-high"},
        {"id": "e1", "source": "is-high", "target": "drain", "sourceHandle": "true"},
        {"id": "e2", "source": "is-high", "target": "check", "sourceHandle": "false"},
    ],
    scope={"type": "team", "team": "storage"},
)

MOVE = _definition(
    "move-leader-on-escalation",
    [
        _action(
            "move",
            "transfer_leader",
            "Move region 9",
            {"attempts": 1},
            region_id=9,
            to_store_id="s5",
        )
    ],
    trigger={"type": "escalation"},
)

STALE = _definition(
    "stale-ticket-health",
    [_action("check", "check_health")],
    trigger={"type": "age", "ageThresholdMinutes": 30},
    settings={"timeout": "15min", "enabled": False},
)

RESTART = _definition(
    "restart-by-hand",
    [_action("restart", "restart_store", store_id="s2"), _action("check", "check_health")],
    trigger={"type": "manual"},
)


async def build_automation_fixture(db_path: Path | str) -> None:
    """Write the automations fixture at ``db_path`` (which must not exist yet)."""
    from operator_core.automations.definition import parse_definition
    from operator_core.automations.validate import check_definition
    from operator_core.cli.automations import new_version

    clock = FrozenClock(FIXTURE_NOW - timedelta(minutes=60))
    executor = ActionExecutor(
        db_path,
        ActionRegistry.from_subject(FixtureSubject()),
        approval_mode=False,
        clock=clock,
        identity=OPERATOR_ACCOUNT,
    )

    async def at(minutes_ago: float) -> None:
        clock.set(FIXTURE_NOW - timedelta(minutes=minutes_ago))

    async with executor:
        step = AutomationStep(executor, RUNNER, 30)

        async def settle() -> None:
            """The runner's automation step, then every ready proposal run, until quiet."""
            for _ in range(10):
                did = await step.cycle(True)
                ran = False
                for view in await executor.db.read(in_flight_and_recent):
                    for p in await executor.execution_proposals(view.id):
                        if p.status != "validated":
                            continue
                        with contextlib.suppress(OperatorError):  # awaiting approval
                            await executor.execute_proposal(p.id, runner_id=RUNNER)
                            ran = True
                if not did and not ran:
                    return

        async def store(data: dict[str, Any], note: str = "") -> None:
            d = parse_definition(data, "fixture")
            check_definition(d, executor.registry, "fixture")
            await executor.store_automation(d.name, new_version(d, note, None), OPERATOR)

        await at(60)
        for data in (HEALTH, DRAIN, MOVE, STALE, RESTART):
            await store(data, "first version")
        await at(50)
        await store(HEALTH_V2, "wait 10 minutes: 5 was too soon after a restart")

        await at(40)
        disk = await executor.open_ticket("Store s3 disk 91% full", "compaction", "critical")
        await settle()
        await at(29)
        await settle()

        await at(20)
        await executor.open_ticket(
            "Store s5 flapping", "down 4 times in 10 min", "high", team="storage"
        )
        await settle()

        await at(15)
        r9 = await executor.open_ticket("Region 9 leader on s1", "s1 CPU at 94%", "medium")
        await executor.escalate_ticket(r9.id or 0, OPERATOR)
        await settle()

        await at(12)
        assert disk.id is not None
        manual = await executor.run_automation("restart-by-hand", disk.id, OPERATOR)
        await at(11)
        await executor.cancel_execution(manual.id, OPERATOR, "wrong store: s3, not s2")
        await settle()

        await at(4)
        await executor.open_ticket("Region 7 write latency", "p99 480 ms", "critical")
        await settle()
        clock.set(FIXTURE_NOW)
