"""``operator demo``: a simulated agent proposing work against the demo cluster, a runner,
and (unless headless) the dashboard, all on one fresh database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.actions.retry import RetryConfig
from operator_core.actions.safety import SafetyMode
from operator_core.db.inuse import exclusive
from operator_core.db.killfile import kill_file_path
from operator_core.errors import ObserveOnlyError, OperatorError
from operator_core.runner import Runner
from operator_core.subjects.demo import DemoSubject

log = logging.getLogger("operator.demo")

AGENT = "agent:demo-remediator"
HEADLESS_APPROVER = "auto-approver@headless-demo"
DEMO_RETRY = RetryConfig(max_attempts=3, min_wait_seconds=4.0, max_wait_seconds=30.0)


def prepare_demo_db(db: Path, wipe: bool) -> None:
    """The demo wants a fresh database. Its own default file is wiped; a file the user named
    is wiped only with --reset, and refused if it already holds data. A file another
    Operator process has open (a demo already running, a runner, a dashboard) is never
    wiped: that is refused with DatabaseError."""
    files = [
        db,
        db.with_name(db.name + "-wal"),
        db.with_name(db.name + "-shm"),
        kill_file_path(db),
    ]  # a kill switch pulled in an earlier demo goes too
    if wipe:
        with exclusive(db):
            for f in files:
                f.unlink(missing_ok=True)
        return
    if db.exists() and db.stat().st_size > 0:
        raise OperatorError(
            f"{db} already exists; the demo needs a fresh database (add --reset to wipe it, "
            "or choose another --db)"
        )


class DemoAgent:
    """Stands in for a monitoring agent: opens tickets and proposes remediations."""

    def __init__(self, executor: ActionExecutor, speed: float = 1.0, seed: int | None = None):
        self.ex = executor
        self.speed = max(speed, 0.01)
        self.rng = random.Random(seed)
        self.proposed = 0

    async def run(self, warmup: int = 5, interval: float = 4.0) -> None:
        for _ in range(warmup):
            await self._safe_step()
        while True:
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * interval / self.speed)
            await self._safe_step()

    async def _safe_step(self) -> None:
        try:
            await self.step()
        except ObserveOnlyError:
            pass  # kill switch pulled: the agent's proposals are refused until resume
        except OperatorError as exc:
            log.warning("demo agent: %s", exc)

    async def step(self) -> None:
        if await self.ex.safety.get_mode() != SafetyMode.EXECUTE:
            return  # kill switch pulled: a real agent's proposals would be refused too
        counts = await self.ex.db.counts()
        waiting = counts.awaiting_approval + counts.workflows_awaiting_approval
        choices = ["transfer", "restart", "followup", "transfer", "restart"]
        if waiting < 6:
            choices += ["workflow", "drain"]
        kind = self.rng.choice(choices)
        store = f"s{self.rng.randint(1, 5)}"
        other = f"s{self.rng.randint(1, 5)}"
        region = self.rng.randint(1, 24)
        ex = self.ex
        if kind == "transfer":
            t = await ex.open_ticket(
                f"Region {region} hot on its leader",
                "p99 latency above SLO for 5 min",
                "medium",
                AGENT,
            )
            await ex.propose_action(
                "transfer_leader",
                {"region_id": region, "to_store_id": other},
                f"Rebalance hot region {region}",
                ticket_id=t.id,
                proposed_by=AGENT,
            )
        elif kind == "restart":
            t = await ex.open_ticket(
                f"Store {store} unresponsive", "heartbeats missing", "high", AGENT
            )
            await ex.propose_action(
                "restart_store",
                {"store_id": store},
                f"Store {store} stopped answering heartbeats",
                ticket_id=t.id,
                proposed_by=AGENT,
            )
        elif kind == "followup":
            await ex.propose_action(
                "check_health",
                {},
                "Scheduled follow-up after remediation",
                schedule_in=self.rng.uniform(20, 90) / self.speed,
                proposed_by=AGENT,
            )
        elif kind == "workflow":
            t = await ex.open_ticket(
                f"Disk errors on store {store}",
                "SMART warnings and rising write latency",
                "high",
                AGENT,
            )
            await ex.propose_workflow(
                f"evacuate-{store}",
                f"Drain {store} after disk errors, then verify",
                [
                    {"action_name": "check_health", "reason": "baseline"},
                    {
                        "action_name": "drain_store",
                        "parameters": {"store_id": store},
                        "reason": f"move leaders off {store}",
                    },
                    {
                        "action_name": "check_health",
                        "reason": "verify after drain",
                        "delay_seconds": 15 / self.speed,
                    },
                ],
                t.id,
                proposed_by=AGENT,
            )
        else:
            t = await ex.open_ticket(
                f"Store {store} saturated", "CPU at 98% for 10 min", "high", AGENT
            )
            await ex.propose_action(
                "drain_store",
                {"store_id": store},
                f"Store {store} is saturated; shed its leaders",
                ticket_id=t.id,
                proposed_by=AGENT,
                expires_in=600 / self.speed,
            )
        self.proposed += 1


async def auto_approver(executor: ActionExecutor, speed: float) -> None:
    """Headless only: approves what waits, after a short think, so the flow shows."""
    while True:
        await asyncio.sleep(2.0 / max(speed, 0.01))
        for p in await executor.db.list_pending_approvals(limit=20):
            with contextlib.suppress(OperatorError):
                await executor.approve_proposal(p.id or 0, HEADLESS_APPROVER)
        for wf in await executor.db.list_workflows(open_only=True, limit=20):
            if wf.requires_approval and wf.approved_at is None:
                with contextlib.suppress(OperatorError):
                    await executor.approve_workflow(wf.id or 0, HEADLESS_APPROVER)


def _executor(db: Path, subject: DemoSubject, approval_mode: bool | None) -> ActionExecutor:
    return ActionExecutor(
        db,
        ActionRegistry.from_subject(subject),
        approval_mode=approval_mode,
        retry_config=DEMO_RETRY,
    )


def demo_background(
    db: Path, speed: float = 1.0, approval_mode: bool | None = None
) -> tuple[DemoSubject, list[Callable[[], Awaitable[None]]]]:
    """The subject and the background tasks (agent, runner) the dashboard runs in its loop."""
    subject = DemoSubject(speed=speed)

    async def agent() -> None:
        async with _executor(db, subject, approval_mode) as ex:
            await DemoAgent(ex, speed).run()

    async def runner() -> None:
        async with _executor(db, subject, approval_mode) as ex:
            await Runner(ex, concurrency=4, grace_seconds=1.0).run()

    return subject, [agent, runner]


async def run_demo(
    db: Path, duration: float, speed: float = 1.0, approval_mode: bool | None = None
) -> str:
    """Headless demo: agent, auto-approver and runner for ``duration`` seconds; a summary."""
    subject = DemoSubject(speed=speed)
    async with (
        _executor(db, subject, approval_mode) as agent_ex,
        _executor(db, subject, approval_mode) as runner_ex,
    ):
        agent = DemoAgent(agent_ex, speed)
        runner = Runner(runner_ex, concurrency=4, grace_seconds=2.0)
        tasks = [
            asyncio.create_task(agent.run()),
            asyncio.create_task(auto_approver(agent_ex, speed)),
        ]
        runner_task = asyncio.create_task(runner.run())
        await asyncio.sleep(duration)
        for t in tasks:
            t.cancel()
        runner.request_stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        stats = await runner_task
        counts = await agent_ex.db.counts()
        workflows = await agent_ex.db.list_workflows(limit=1000)
        ok, events, message = await agent_ex.db.verify_audit_chain()
    wf_states: dict[str, int] = {}
    for wf in workflows:
        wf_states[wf.status.value] = wf_states.get(wf.status.value, 0) + 1
    lines = [
        f"demo ran {duration:g}s on {db}",
        f"agent proposed {agent.proposed} item(s); runner completed {stats.completed}, "
        f"failed attempts {stats.failed}, cancelled {stats.cancelled}",
        "actions by status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.by_status.items())),
        "workflows by status: "
        + (", ".join(f"{k} {v}" for k, v in sorted(wf_states.items())) or "none"),
        f"awaiting approval {counts.awaiting_approval}, scheduled {counts.scheduled}, "
        f"retry-waiting {counts.retry_waiting}",
        f"audit log: {'OK' if ok else 'BROKEN'} ({message})",
    ]
    return "\n".join(lines)
