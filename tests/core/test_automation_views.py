"""The Automations view's reads on a real SQLite file: every open execution however old,
with only the newest others, newest first; each automation's newest execution."""

from __future__ import annotations

from typing import Any

from operator_core.actions.executor import ActionExecutor
from operator_core.db import executions as execution_db
from operator_core.db.automation_views import (
    automations_view,
    execution_detail,
    in_flight_and_recent,
    version_history,
)

from tests.automations.helpers import action, linear
from tests.automations.runs import store


async def test_open_executions_stay_listed_however_old(make_executor: Any) -> None:
    ex: ActionExecutor = await make_executor()
    await store(ex, linear(action("a", "ok"), name="by-hand", trigger={"type": "manual"}))
    await store(ex, linear(action("a", "ok"), name="never-run", trigger={"type": "manual"}))
    ids = []
    for i in range(60):
        ticket = await ex.open_ticket(f"t{i}")
        ids.append((await ex.run_automation("by-hand", ticket.id or 0, "ana")).id)
    for execution_id in ids[2:]:
        await ex.cancel_execution(execution_id, "ana")

    listed = [e.id for e in await ex.db.read(in_flight_and_recent, 200, 50)]
    assert listed == [*reversed(ids[-50:]), ids[1], ids[0]]
    assert [e.id for e in await ex.db.read(in_flight_and_recent, 1, 3)] == [
        *reversed(ids[-3:]),
        ids[1],
    ]

    view = await ex.db.read(automations_view)
    assert [a.name for a in view.automations] == ["by-hand", "never-run"]
    assert {k: e.id for k, e in view.latest.items()} == {"by-hand": ids[-1]}
    grouped = await ex.db.read(execution_db.latest_per_automation)
    assert {k: e.id for k, e in grouped.items()} == {"by-hand": ids[-1]}


async def test_one_execution_and_one_history(make_executor: Any) -> None:
    ex: ActionExecutor = await make_executor()
    await store(ex, linear(action("a", "ok"), name="auto", trigger={"type": "manual"}))
    await store(ex, linear(action("a", "ok"), action("b", "ok"), name="auto"), note="two steps")
    ticket = await ex.open_ticket("t")
    run = await ex.run_automation("auto", ticket.id or 0, "ana")

    found, made = await ex.db.read(execution_detail, run.id)
    assert found is not None and (found.id, found.version, made) == (run.id, 2, [])
    assert await ex.db.read(execution_detail, run.id + 1) == (None, [])

    automation, versions = await ex.db.read(version_history, "auto")
    assert automation is not None and automation.current_version == 2
    assert [(v.version, v.note) for v in versions] == [(1, ""), (2, "two steps")]
    assert await ex.db.read(version_history, "nope") == (None, [])
