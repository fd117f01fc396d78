"""Automations: ticket event → the execution's first proposal stored, with an idle
``operator run`` in its own process.

1,000 tickets are opened over 10 s from the bench process (through ``ActionExecutor``, whose
commits poke the runner's wake-up socket) against 20 enabled automations: ten match one
service each (so each ticket matches exactly one), ten match a service no ticket has. Each
interval runs from the ticket's ``created_at`` to its first proposal's ``proposed_at``, two
timestamps the engine stored. Also counted: executions started twice for one automation and
ticket, tickets that started none, proposals made twice for one node. No peer.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Figure, db_time, percentile, reader, runner_process, settle

MATCHING = 10
NOT_MATCHING = 10

# Per ticket: its creation and its first proposal (idx_action_proposals_ticket).
LATENCY_SQL = """
SELECT t.created_at, MIN(p.proposed_at) FROM tickets t
JOIN action_proposals p ON p.ticket_id = t.id
GROUP BY t.id
"""

# Executions per automation and ticket beyond the first (should be none).
DUPLICATES_SQL = """
SELECT COALESCE(SUM(n - 1), 0) FROM (
    SELECT COUNT(*) AS n FROM automation_executions GROUP BY automation_id, ticket_id)
"""

# Tickets that started no execution (should be none: each matches one automation).
MISSED_SQL = """
SELECT COUNT(*) FROM tickets t
WHERE NOT EXISTS (SELECT 1 FROM automation_executions e WHERE e.ticket_id = t.id)
"""

# Proposals made twice for one node of one execution (should be none).
TWICE_SQL = """
SELECT COALESCE(SUM(n - 1), 0) FROM (
    SELECT COUNT(*) AS n FROM action_proposals
    WHERE automation_execution_id IS NOT NULL
    GROUP BY automation_execution_id, automation_node)
"""


def _definition(i: int, service: str) -> dict[str, Any]:
    return {
        "name": f"bench-{i}",
        "description": "bench",
        "nodes": [
            {"id": "t", "type": "trigger", "data": {}},
            {"id": "a", "type": "action", "data": {"action": "noop"}},
        ],
        "edges": [{"id": "e", "source": "t", "target": "a"}],
        "trigger": {
            "type": "incident_created",
            "conditions": [{"field": "service", "value": service}],
        },
        "settings": {"timeout": "1h", "enabled": True},
    }


async def _store_automations(ex: Any) -> None:
    from operator_core.automations.definition import parse_definition
    from operator_core.automations.validate import check_definition
    from operator_core.cli.automations import new_version

    services = [f"s{i}" for i in range(MATCHING)] + [f"nobody{i}" for i in range(NOT_MATCHING)]
    for i, service in enumerate(services):
        d = parse_definition(_definition(i, service))
        check_definition(d, ex.registry, "bench")
        await ex.store_automation(d.name, new_version(d, "", None), "bench")


async def _one_run(workdir: Path, tickets: int, spread: float) -> dict[str, Any]:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry

    from bench.subjects import NoopSubject

    db = workdir / "automations.db"
    ex = ActionExecutor(db, ActionRegistry.from_subject(NoopSubject()), approval_mode=False)
    async with ex:
        await _store_automations(ex)
        with runner_process(workdir, db):
            start = time.monotonic()
            for i in range(tickets):
                due = start + i * spread / tickets
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await ex.open_ticket(f"ticket {i}", service=f"s{i % MATCHING}")
            conn = reader(db)
            deadline = time.monotonic() + 120
            done = 0
            while time.monotonic() < deadline:
                done = conn.execute("SELECT COUNT(*) FROM action_proposals").fetchone()[0]
                if done >= tickets:
                    break
                await asyncio.sleep(0.05)
            samples = [db_time(p) - db_time(c) for c, p in conn.execute(LATENCY_SQL)]
            out = {
                "samples": samples,
                "duplicates": conn.execute(DUPLICATES_SQL).fetchone()[0],
                "missed": conn.execute(MISSED_SQL).fetchone()[0],
                "twice": conn.execute(TWICE_SQL).fetchone()[0],
            }
            conn.close()
    return out


def bench(runs: int, quick: bool, log: Callable[[str], None] = print) -> list[Figure]:
    tickets, spread = (100, 1.0) if quick else (1000, 10.0)
    ms = 1000.0
    group = (
        f"automations: {tickets} tickets over {spread:g} s, {MATCHING + NOT_MATCHING} "
        "automations, event → first proposal"
    )
    p50 = Figure(group, "p50", "ms")
    p99 = Figure(group, "p99", "ms", target="p99 ≤ 50 ms", meets=lambda v: v <= 50)
    dup = Figure(group, "executions started twice", "count")
    missed = Figure(group, "tickets with no execution", "count")
    twice = Figure(group, "actions proposed twice", "count")
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-automations-") as tmp:
            settle()
            out = asyncio.run(_one_run(Path(tmp), tickets, spread))
        p50.ours.append(percentile(out["samples"], 50) * ms)
        p99.ours.append(percentile(out["samples"], 99) * ms)
        dup.ours.append(float(out["duplicates"]))
        missed.ours.append(float(out["missed"]))
        twice.ours.append(float(out["twice"]))
        log(
            f"  run {i + 1}/{runs}: p50/p99 {p50.ours[-1]:.1f}/{p99.ours[-1]:.1f} ms, "
            f"{len(out['samples'])} measured, duplicates {out['duplicates']}, missed "
            f"{out['missed']}, proposed twice {out['twice']}"
        )
    return [p50, p99, dup, missed, twice]
