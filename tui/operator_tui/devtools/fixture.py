"""A deterministic demo database for snapshot tests and ``screenshots/``.

Built only through ActionExecutor / ActionDB with a FrozenClock, zero retry jitter and a
subject whose outcomes depend on the parameters alone, so every timestamp, id and row is
the same on every run. The dashboard is then opened at ``FIXTURE_NOW`` with
``fixture_app``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.actions.retry import RetryConfig
from operator_core.clock import FrozenClock
from operator_core.db import heartbeats
from operator_core.db.actions import Claim
from operator_core.db.url import NOWHERE, parse_target
from operator_core.errors import ActionFailed
from operator_core.identity import Identity
from operator_core.subjects.base import ExecutionContext
from operator_core.subjects.demo import DemoSubject

FIXTURE_NOW = datetime(2026, 3, 14, 9, 30, 0, tzinfo=UTC)
OPERATOR = "alice@ops-1"
OPERATOR_ACCOUNT = Identity(1000, "alice", "ops-1")
"""The OS account the fixture's history was written by, the same on every machine."""
RUNNER = "ops-1:4242:runner"
DB_NAME = "operator.db"


class FixtureSubject(DemoSubject):
    """The demo cluster's actions, instant and deterministic: restarting s4 and moving a
    leader onto s5 fail; everything else succeeds."""

    def __init__(self) -> None:
        super().__init__(failure_rate=0.0, speed=1.0, seed=0)

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any] | None:
        if action_name == "restart_store" and parameters.get("store_id") == "s4":
            raise ActionFailed("store s4 did not come back within the health check")
        if action_name == "transfer_leader" and parameters.get("to_store_id") == "s5":
            raise ActionFailed("store s5 is down")
        if action_name == "check_health":
            return {"down": [], "draining": [], "leaders_per_store": {"s1": 5, "s2": 5}}
        return {"action": action_name, **parameters}


def _at(minutes: float) -> datetime:
    """``minutes`` before FIXTURE_NOW."""
    return FIXTURE_NOW - timedelta(minutes=minutes)


async def build_fixture(db_path: Path | str, *, observe: bool = False) -> None:
    """Write the fixture database at ``db_path`` (which must not exist yet), or into the
    empty Operator database at a PostgreSQL URL. ``observe`` finishes with the kill switch
    pulled, for the OBSERVE banner."""
    clock = FrozenClock(_at(60))
    subject = FixtureSubject()
    target = parse_target(db_path)
    db = None
    if target.url is not None:
        from operator_core.db.pg.store import PgActionDB

        db = PgActionDB(target.url, clock=clock)
    executor = ActionExecutor(
        target.path or NOWHERE,
        ActionRegistry.from_subject(subject),
        approval_mode=True,
        retry_config=RetryConfig(min_wait_seconds=60, max_wait_seconds=600, jitter_fraction=0),
        clock=clock,
        identity=OPERATOR_ACCOUNT,
        db=db,
    )
    async with executor:
        running = await _present(executor, clock)
        if observe:
            # The kill switch, and the runner stopping what it was executing.
            await executor.kill_switch(OPERATOR)
            for claim_id, reason in (await executor.db.stop_requested(RUNNER)).items():
                await executor.db.cancel_attempt(running[claim_id], RUNNER, reason)


# (minutes ago, action, parameters): an hour of routine work for the activity sparklines.
_HISTORY: list[tuple[float, str, dict[str, Any]]] = [
    (58, "check_health", {}),
    (55, "transfer_leader", {"region_id": 4, "to_store_id": "s1"}),
    (51, "check_health", {}),
    (47, "transfer_leader", {"region_id": 11, "to_store_id": "s5"}),
    (44, "check_health", {}),
    (41, "transfer_leader", {"region_id": 2, "to_store_id": "s3"}),
    (39, "transfer_leader", {"region_id": 5, "to_store_id": "s3"}),
    (37, "check_health", {}),
    (33, "transfer_leader", {"region_id": 16, "to_store_id": "s5"}),
    (30, "check_health", {}),
    (27, "transfer_leader", {"region_id": 8, "to_store_id": "s1"}),
    (25, "transfer_leader", {"region_id": 9, "to_store_id": "s1"}),
    (23, "check_health", {}),
    (19, "check_health", {}),
    (16, "transfer_leader", {"region_id": 13, "to_store_id": "s2"}),
    (14, "check_health", {}),
    (11, "check_health", {}),
    (8.5, "transfer_leader", {"region_id": 17, "to_store_id": "s5"}),
]

Step = Callable[[], Awaitable[Any]]


class _Timeline:
    """Steps at given times (minutes before FIXTURE_NOW), run in time order, so the audit log
    reads chronologically like a real day's."""

    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        self._steps: list[tuple[float, int, Step]] = []

    def at(self, minutes: float, step: Step) -> None:
        self._steps.append((-minutes, len(self._steps), step))

    async def run(self) -> None:
        for minus, _, step in sorted(self._steps, key=lambda s: (s[0], s[1])):
            self._clock.set(_at(-minus))
            await step()


def _routine(executor: ActionExecutor, timeline: _Timeline) -> None:
    for minutes, action, params in _HISTORY:
        ids: list[int] = []

        async def propose(
            action: str = action, params: dict[str, Any] = params, ids: list[int] = ids
        ) -> None:
            reason = "routine rebalancing" if params else "periodic health check"
            p = await executor.propose_action(action, params, reason=reason, max_retries=0)
            assert p.id is not None
            ids.append(p.id)

        async def approve(ids: list[int] = ids) -> None:
            await executor.approve_proposal(ids[0], OPERATOR)

        async def run(ids: list[int] = ids) -> None:
            await executor.execute_proposal(ids[0], runner_id=RUNNER)

        timeline.at(minutes + 1, propose)
        timeline.at(minutes + 0.5, approve)
        timeline.at(minutes, run)


async def _present(executor: ActionExecutor, clock: FrozenClock) -> dict[int, Claim]:
    """An hour of work ending in today's state; returns the claims left executing."""
    db = executor.db
    timeline = _Timeline(clock)
    _routine(executor, timeline)
    ids: dict[str, int] = {}
    running: dict[int, Claim] = {}

    async def ticket(name: str, title: str, summary: str, severity: str) -> None:
        t = await executor.open_ticket(title, summary, severity)
        assert t.id is not None
        ids[name] = t.id

    async def propose(
        name: str,
        action: str,
        params: dict[str, Any],
        reason: str,
        ticket: str | None = None,
        **kw: Any,
    ) -> None:
        p = await executor.propose_action(
            action, params, reason=reason, ticket_id=ids.get(ticket or ""), **kw
        )
        assert p.id is not None
        ids[name] = p.id

    def later(fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Step:
        return lambda: fn(*args, **kw)

    # An in-progress workflow: step 1 done, step 2 executing now, step 3 waits 2 minutes.
    async def rolling_restart() -> None:
        await ticket("roll", "Rolling restart of s2", "kernel patch", "low")
        ids["wf-roll"] = await executor.propose_workflow(
            "rolling-restart-s2",
            "Restart s2 for the kernel patch, then give region 3 back",
            [
                {
                    "action_name": "restart_store",
                    "parameters": {"store_id": "s2"},
                    "reason": "apply the kernel patch",
                },
                {
                    "action_name": "transfer_leader",
                    "parameters": {"region_id": 3, "to_store_id": "s2"},
                    "reason": "give region 3 back to s2",
                },
                {
                    "action_name": "check_health",
                    "reason": "confirm the cluster settled",
                    "delay_seconds": 120,
                },
            ],
            ticket_id=ids["roll"],
        )
        steps = await db.list_workflow_actions(ids["wf-roll"])
        ids.update({"roll-1": steps[0].id or 0, "roll-2": steps[1].id or 0})

    async def claim_step_2() -> None:
        for claim in await db.claim_ready(RUNNER, 1, 30, only_id=ids["roll-2"]):
            assert claim.proposal.id is not None
            running[claim.proposal.id] = claim

    timeline.at(12, rolling_restart)
    timeline.at(10, lambda: executor.approve_workflow(ids["wf-roll"], OPERATOR))
    timeline.at(2, lambda: executor.execute_proposal(ids["roll-1"], runner_id=RUNNER))
    timeline.at(0.25, claim_step_2)

    # Scheduled follow-ups: two approved, one still awaiting approval.
    timeline.at(
        9,
        later(
            propose,
            "health",
            "check_health",
            {},
            "follow-up after the s4 restarts",
            schedule_in=24 * 60,
        ),
    )
    timeline.at(
        9,
        later(
            propose,
            "r21",
            "transfer_leader",
            {"region_id": 21, "to_store_id": "s4"},
            "return region 21 once s4 is back",
            schedule_in=13.5 * 60,
        ),
    )
    timeline.at(8, lambda: executor.approve_proposal(ids["health"], OPERATOR))
    timeline.at(8, lambda: executor.approve_proposal(ids["r21"], OPERATOR))
    timeline.at(
        4,
        later(
            propose,
            "s1",
            "restart_store",
            {"store_id": "s1"},
            "weekly restart in the maintenance window",
            scheduled_at=FIXTURE_NOW + timedelta(minutes=45),
        ),
    )

    # A retry backlog: s4 keeps failing to restart (attempts 1-3 failed, the last is next).
    timeline.at(
        7,
        later(
            ticket,
            "s4",
            "Store s4 unresponsive",
            "s4 stopped answering heartbeats at 09:22Z",
            "high",
        ),
    )
    timeline.at(
        7,
        later(
            propose,
            "s4-restart",
            "restart_store",
            {"store_id": "s4"},
            "s4 stopped answering heartbeats",
            ticket="s4",
        ),
    )
    timeline.at(6.5, lambda: executor.approve_proposal(ids["s4-restart"], OPERATOR))
    for minutes in (6, 5, 3):
        timeline.at(minutes, lambda: executor.execute_proposal(ids["s4-restart"], runner_id=RUNNER))

    # A leader move onto s5 failed once; its retry is due in 15 s.
    timeline.at(
        1.5,
        later(ticket, "r9", "Region 9 leader on an overloaded store", "s1 CPU at 94%", "medium"),
    )
    timeline.at(
        1.5,
        later(
            propose,
            "r9-move",
            "transfer_leader",
            {"region_id": 9, "to_store_id": "s5"},
            "move region 9 off the overloaded s1",
            ticket="r9",
        ),
    )
    timeline.at(1, lambda: executor.approve_proposal(ids["r9-move"], OPERATOR))
    timeline.at(0.75, lambda: executor.execute_proposal(ids["r9-move"], runner_id=RUNNER))

    # Waiting for a human: a drain, a leader move, and a whole workflow.
    timeline.at(
        8, later(ticket, "s5", "Store s5 flapping", "s5 went down 4 times in 10 min", "high")
    )
    timeline.at(
        8,
        later(
            propose,
            "drain",
            "drain_store",
            {"store_id": "s5"},
            "s5 flapped 4 times in 10 minutes; take it out",
            ticket="s5",
        ),
    )
    timeline.at(
        2.5,
        later(
            ticket,
            "r7",
            "Region 7 leader hot on s3",
            "p99 write latency 480 ms on region 7",
            "high",
        ),
    )
    timeline.at(
        2.5,
        later(
            propose,
            "r7-move",
            "transfer_leader",
            {"region_id": 7, "to_store_id": "s2"},
            "region 7 write latency p99 480 ms on s3",
            ticket="r7",
        ),
    )

    async def evacuate() -> None:
        await ticket("s3", "Store s3 disk 91% full", "compaction cannot keep up", "critical")
        await executor.propose_workflow(
            "evacuate-s3",
            "Move everything off s3 before its disk fills",
            [
                {
                    "action_name": "drain_store",
                    "parameters": {"store_id": "s3"},
                    "reason": "stop new leaders landing on s3",
                },
                {
                    "action_name": "transfer_leader",
                    "parameters": {"region_id": 12, "to_store_id": "s1"},
                    "reason": "move the busiest region first",
                },
                {
                    "action_name": "check_health",
                    "reason": "confirm s3 is empty",
                    "delay_seconds": 60,
                },
            ],
            ticket_id=ids["s3"],
        )

    timeline.at(1.75, evacuate)
    # The runner that ran all this: up for the hour, its last heartbeat 6 s ago.
    timeline.at(60, lambda: db.write(heartbeats.started, RUNNER, "ops-1", 4242, _at(60)))
    timeline.at(0.1, lambda: db.write(heartbeats.beat, RUNNER, "ops-1", 4242, _at(0.1)))
    await timeline.run()
    clock.set(FIXTURE_NOW)
    return running


def fixture_app(db_path: Path | str, **kwargs: Any):  # type: ignore[no-untyped-def]
    """The dashboard on a fixture database, at FIXTURE_NOW, as OPERATOR."""
    from operator_tui.app import OperatorApp

    return OperatorApp(
        db_path,
        subject=FixtureSubject(),
        clock=FrozenClock(FIXTURE_NOW),
        actor=OPERATOR,
        approval_mode=True,
        **kwargs,
    )
