"""Automations executed end to end: ticket events start executions through the real Runner
on a real SQLite file, action nodes become ordinary proposals, delays and timeouts follow a
frozen clock, and cancelling (resolve, kill switch, an operator) ends them with their
pending proposals."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.automations.definition import parse_definition
from operator_core.cli.automations import new_version
from operator_core.clock import FrozenClock
from operator_core.errors import ApprovalError, InvalidTransitionError
from operator_core.identity import Identity
from operator_core.subjects.demo import DemoSubject

from tests.automations.helpers import action, condition, delay, linear, seed_dict
from tests.automations.runs import T0, actions_run, executions, proposals, rows, run_idle, store


async def test_a_matching_ticket_runs_the_automation_once(
    make_executor: Any, db_path: Path
) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    trigger = {
        "type": "incident_created",
        "conditions": [
            {"field": "priority", "value": "high"},
            {"field": "service", "value": "api"},
        ],
    }
    await store(ex, linear(action("a", "ok"), action("b", "ok"), trigger=trigger))
    hit = await ex.open_ticket("api down", severity="high", service="api")
    await ex.open_ticket("db slow", severity="high", service="db")
    await ex.open_ticket("api meh", severity="low", service="api")
    await run_idle(ex)
    (run,) = await executions(ex)
    assert (run.ticket_id, run.status, run.trigger, run.version) == (
        hit.id,
        "COMPLETED",
        "incident_created",
        1,
    )
    assert sorted(n for n, r in run.state.nodes.items() if r.status == "completed") == [
        "a",
        "b",
        "t",
    ]
    assert actions_run(db_path) == ["ok", "ok"]
    assert {p["proposed_by"] for p in proposals(db_path)} == {"automation:auto"}
    assert (await ex.latest_executions())["auto"].id == run.id
    assert all(p["status"] == "completed" for p in proposals(db_path))
    events = [r[0] for r in rows(db_path, "SELECT event_type FROM action_audit_log ORDER BY id")]
    assert "automation_execution_started" in events
    assert "automation_node_completed" in events
    assert events.count("automation_execution_finished") == 1


@pytest.mark.parametrize(
    ("field", "value", "ticket"),
    [
        ("severity", "critical", {"severity": "critical"}),
        ("priority", "high", {"severity": "high"}),
        ("service", "api", {"service": "api"}),
        ("team", "storage", {"team": "storage"}),
        ("assignee", "ana", {"assignee": "ana"}),
        ("metadata.region", "eu", {"metadata": {"region": "eu"}}),
    ],
)
async def test_every_condition_field_selects_tickets(
    make_executor: Any, field: str, value: str, ticket: dict[str, Any]
) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    trigger = {"type": "incident_created", "conditions": [{"field": field, "value": value}]}
    await store(ex, linear(action("a", "ok"), trigger=trigger))
    wanted = await ex.open_ticket("match", **ticket)
    await ex.open_ticket("other", severity="low", service="web", team="web", assignee="bo")
    await run_idle(ex)
    assert [e.ticket_id for e in await executions(ex)] == [wanted.id]


async def test_status_condition_selects_by_the_status_the_change_left(
    make_executor: Any,
) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    trigger = {
        "type": "state_changed",
        "conditions": [{"field": "status", "value": "acknowledged"}],
    }
    await store(ex, linear(action("a", "ok"), trigger=trigger))
    acked = await ex.open_ticket("acked")
    resolved = await ex.open_ticket("resolved")
    await ex.acknowledge_ticket(acked.id or 0, "ana")
    await ex.resolve_ticket(resolved.id or 0, "ana")
    await run_idle(ex)
    assert [e.ticket_id for e in await executions(ex)] == [acked.id]


async def test_state_changed_escalation_and_manual_triggers(make_executor: Any) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    acked = {"type": "state_changed", "stateTransition": {"from": "open", "to": "acknowledged"}}
    await store(ex, linear(action("a", "ok"), name="on-ack", trigger=acked))
    await store(ex, linear(action("a", "ok"), name="on-escalate", trigger={"type": "escalation"}))
    await store(ex, linear(action("a", "ok"), name="by-hand", trigger={"type": "manual"}))
    t = await ex.open_ticket("t", severity="low")
    await run_idle(ex)
    assert await executions(ex) == []
    await ex.escalate_ticket(t.id or 0, "ana")
    await ex.acknowledge_ticket(t.id or 0, "ana")
    manual = await ex.run_automation("by-hand", t.id or 0, "ana")
    assert manual.status == "PENDING"
    await run_idle(ex)
    done = {e.automation_name: (e.trigger, e.status) for e in await executions(ex)}
    assert done == {
        "on-escalate": ("escalation", "COMPLETED"),
        "on-ack": ("state_changed", "COMPLETED"),
        "by-hand": ("manual", "COMPLETED"),
    }


async def test_age_trigger_fires_once_when_the_threshold_passes(make_executor: Any) -> None:
    clock = FrozenClock(T0)
    ex: ActionExecutor = await make_executor(clock=clock)
    age = {"type": "age", "ageThresholdMinutes": 30}
    await store(ex, linear(action("a", "ok"), name="stale", trigger=age))
    old = await ex.open_ticket("old")
    acked = await ex.open_ticket("acked")
    await ex.acknowledge_ticket(acked.id or 0, "ana")
    runner = await run_idle(ex)
    assert await executions(ex) == []
    assert runner.automations.age_due == T0.replace(minute=36)
    clock.advance(29 * 60)
    await run_idle(ex)
    assert await executions(ex) == []
    clock.advance(60)
    await run_idle(ex)
    clock.advance(3600)
    await run_idle(ex)
    runs = await executions(ex)
    assert [(e.ticket_id, e.trigger, e.status) for e in runs] == [(old.id, "age", "COMPLETED")]


async def test_condition_takes_either_branch_after_a_delay(
    make_executor: Any, db_path: Path
) -> None:
    """Wait 5 minutes (frozen clock), then: still open -> "ok"; acknowledged -> "guarded"."""
    clock = FrozenClock(T0)
    ex: ActionExecutor = await make_executor(clock=clock)
    data = linear(delay("wait", 5), condition("open?", "status", "open"))
    data["nodes"] += [action("yes", "ok"), action("no", "ok", parameters={"seconds": 0.01})]
    data["edges"] += [
        {"id": "y", "source": "open?", "target": "yes", "sourceHandle": "true"},
        {"id": "n", "source": "open?", "target": "no", "sourceHandle": "false"},
    ]
    await store(ex, data)
    still = await ex.open_ticket("still open")
    acked = await ex.open_ticket("acked soon")
    await run_idle(ex)
    runs = await executions(ex)
    assert [e.current_node for e in runs] == ["wait", "wait"]
    assert all(e.next_wake_at == T0.replace(minute=11) for e in runs)
    assert proposals(db_path) == []
    await ex.acknowledge_ticket(acked.id or 0, "ana")
    clock.advance(5 * 60)
    await run_idle(ex)
    by_ticket = {e.ticket_id: e for e in await executions(ex)}
    assert by_ticket[still.id].state.nodes["yes"].status == "completed"
    assert by_ticket[still.id].state.nodes["no"].status == "skipped"
    assert by_ticket[acked.id].state.nodes["no"].status == "completed"
    assert by_ticket[acked.id].state.nodes["yes"].status == "skipped"
    assert {e.status for e in by_ticket.values()} == {"COMPLETED"}


async def test_timeout_fails_the_execution_and_cancels_its_pending_proposal(
    make_executor: Any, db_path: Path
) -> None:
    clock = FrozenClock(T0)
    ex: ActionExecutor = await make_executor(clock=clock)
    await store(ex, linear(action("g", "guarded"), settings={"timeout": "1min", "enabled": True}))
    await ex.open_ticket("t")
    await run_idle(ex)
    (p,) = proposals(db_path)
    assert (p["status"], p["requires_approval"], p["approved_at"]) == ("validated", 1, None)
    clock.advance(61)
    await run_idle(ex)
    (run,) = await executions(ex)
    assert run.status == "FAILED" and run.error == "timed out after 1min"
    assert run.state.nodes["g"].status == "cancelled"
    assert proposals(db_path)[0]["status"] == "cancelled"


async def test_failing_node_fails_the_execution_unless_it_continues(
    make_executor: Any, db_path: Path
) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    await store(ex, linear(action("f", "fail_hard"), action("after", "ok"), name="stops"))
    await store(
        ex,
        linear(action("f", "fail_hard", continueOnError=True), action("after", "ok"), name="goes"),
    )
    await ex.open_ticket("t")
    await run_idle(ex)
    runs = {e.automation_name: e for e in await executions(ex)}
    assert runs["stops"].status == "FAILED"
    assert runs["stops"].error == 'node "f" failed: permanent failure'
    assert "after" not in runs["stops"].state.nodes
    assert runs["goes"].status == "COMPLETED"
    assert runs["goes"].state.nodes["f"].status == "failed"
    assert runs["goes"].state.nodes["after"].status == "completed"


async def test_a_proposal_that_fails_validation_fails_its_node_not_the_runner(
    make_executor: Any, db_path: Path
) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    bad = action("n", "flaky", parameters={"times": "{ticket.metadata.n}"})
    await store(ex, linear(bad, action("next", "ok")))
    await ex.open_ticket("t", metadata={"n": "lots"})
    await run_idle(ex)
    (run,) = await executions(ex)
    assert run.status == "FAILED"
    assert run.state.nodes["n"].error is not None
    assert run.state.nodes["n"].error.startswith("cannot propose flaky: ")
    assert "times" in run.state.nodes["n"].error
    assert proposals(db_path) == []


async def test_a_runner_without_the_action_fails_the_node_with_a_clear_error(
    make_executor: Any, db_path: Path
) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    await store(ex, linear(action("a", "ok")))
    await ex.open_ticket("t")
    other: ActionExecutor = await make_executor(subject=DemoSubject(seed=1), clock=FrozenClock(T0))
    await run_idle(other)
    (run,) = await executions(ex)
    assert run.status == "FAILED"
    assert "cannot propose ok" in (run.state.nodes["a"].error or "")


async def test_team_scope_and_disabled_automations(make_executor: Any) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    await store(ex, linear(action("a", "ok"), name="team", scope={"type": "team", "team": "db"}))
    await store(ex, linear(action("a", "ok"), name="off"))
    await ex.set_automation_enabled("off", False, "ana")
    await ex.open_ticket("api", team="api")
    db_ticket = await ex.open_ticket("db", team="db")
    await run_idle(ex)
    assert [(e.automation_name, e.ticket_id) for e in await executions(ex)] == [
        ("team", db_ticket.id)
    ]
    with pytest.raises(InvalidTransitionError, match="disabled"):
        await ex.run_automation("off", db_ticket.id or 0, "ana")


async def test_manual_run_refusals_change_nothing(make_executor: Any) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    await store(ex, linear(action("g", "guarded"), trigger={"type": "manual"}))
    t = await ex.open_ticket("t")
    first = await ex.run_automation("auto", t.id or 0, "ana")
    with pytest.raises(InvalidTransitionError, match=f"already has execution {first.id} open"):
        await ex.run_automation("auto", t.id or 0, "ana")
    done = await ex.open_ticket("done")
    await ex.resolve_ticket(done.id or 0, "ana")
    with pytest.raises(InvalidTransitionError, match="resolved"):
        await ex.run_automation("auto", done.id or 0, "ana")
    assert len(await executions(ex)) == 1


async def test_resolving_the_ticket_cancels_its_executions_and_proposals(
    make_executor: Any, db_path: Path
) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    await store(ex, linear(action("g", "guarded"), action("after", "ok")))
    t = await ex.open_ticket("t")
    other = await ex.open_ticket("other")
    await run_idle(ex)
    await ex.resolve_ticket(t.id or 0, "ana")
    by_ticket = {e.ticket_id: e for e in await executions(ex)}
    assert by_ticket[t.id].status == "CANCELLED"
    assert by_ticket[t.id].error == "ticket resolved"
    assert by_ticket[other.id].status == "RUNNING"
    statuses = {p["ticket_id"]: p["status"] for p in proposals(db_path)}
    assert statuses == {t.id: "cancelled", other.id: "validated"}
    await run_idle(ex)
    assert {p["action_name"] for p in proposals(db_path)} == {"guarded"}


async def test_kill_switch_cancels_every_execution_and_its_proposals(
    make_executor: Any, db_path: Path
) -> None:
    clock = FrozenClock(T0)
    ex: ActionExecutor = await make_executor(clock=clock)
    await store(ex, linear(action("g", "guarded"), name="held"))
    await store(ex, linear(delay("d", 10), action("a", "ok"), name="waits"))
    await ex.open_ticket("t")
    await run_idle(ex)
    await ex.kill_switch("ana")
    assert {e.status for e in await executions(ex)} == {"CANCELLED"}
    assert {p["status"] for p in proposals(db_path)} == {"cancelled"}
    clock.advance(3600)
    await run_idle(ex)
    assert len(proposals(db_path)) == 1


async def test_operator_cancel_and_rejection(make_executor: Any, db_path: Path) -> None:
    ex: ActionExecutor = await make_executor(clock=FrozenClock(T0))
    await store(ex, linear(action("g", "guarded")))
    a = await ex.open_ticket("a")
    b = await ex.open_ticket("b")
    await run_idle(ex)
    runs = {e.ticket_id: e for e in await executions(ex)}
    cancelled = await ex.cancel_execution(runs[a.id].id, "ana", "not needed")
    assert (cancelled.status, cancelled.error) == ("CANCELLED", "not needed")
    with pytest.raises(InvalidTransitionError, match="CANCELLED"):
        await ex.cancel_execution(runs[a.id].id, "ana")
    pending = [p for p in proposals(db_path) if p["status"] == "validated"]
    assert [p["ticket_id"] for p in pending] == [b.id]
    await ex.reject_proposal(pending[0]["id"], "ana", "no thanks")
    await run_idle(ex)
    run_b = await ex.get_execution(runs[b.id].id)
    assert run_b.status == "FAILED"
    assert "rejected" in (run_b.state.nodes["g"].error or "")


async def test_automation_actions_are_held_for_approval_like_direct_ones(
    make_executor: Any, db_path: Path
) -> None:
    """Approval mode holds the automation's action; four-eyes refuses its own runner's
    identity as approver, and another person's approval lets it run."""
    runner_id = Identity(1001, "runner", "ops")
    ex: ActionExecutor = await make_executor(
        clock=FrozenClock(T0), approval_mode=True, four_eyes=True, identity=runner_id
    )
    await store(ex, linear(action("a", "ok")))
    await ex.open_ticket("t")
    await run_idle(ex)
    (p,) = proposals(db_path)
    direct = await ex.propose_action("ok", {}, "by hand")
    assert (p["status"], p["requires_approval"]) == ("validated", 1)
    assert (direct.requires_approval, p["proposed_identity"]) == (True, runner_id.text)
    with pytest.raises(ApprovalError):
        await ex.approve_proposal(p["id"], "runner")
    other: ActionExecutor = await make_executor(
        clock=FrozenClock(T0),
        approval_mode=True,
        four_eyes=True,
        identity=Identity(1002, "ana", "ops"),
    )
    await other.approve_proposal(p["id"], "ana")
    await run_idle(ex)
    (run,) = await executions(ex)
    assert run.status == "COMPLETED"
    origin = await ex.proposal_origin(p["id"])
    assert origin is not None
    assert (origin.automation, origin.version, origin.node, origin.execution_id) == (
        "auto",
        1,
        "a",
        run.id,
    )


async def test_an_execution_keeps_its_frozen_definition(make_executor: Any, db_path: Path) -> None:
    """Re-applied and rolled back while it waits, the execution runs the version it began."""
    clock = FrozenClock(T0)
    ex: ActionExecutor = await make_executor(clock=clock)
    await store(ex, linear(delay("d", 1), action("a", "ok")))
    await ex.open_ticket("t")
    await run_idle(ex)
    assert await store(ex, linear(delay("d", 1), action("a", "guarded"))) == 2
    old = await ex.automation_version("auto", 1)
    back = new_version(parse_definition(old.definition), "back", 1)
    await ex.store_automation("auto", back, "ana")
    assert await store(ex, linear(delay("d", 1), action("a", "guarded"))) == 4
    clock.advance(60)
    await run_idle(ex)
    (run,) = await executions(ex)
    assert (run.version, run.status) == (1, "COMPLETED")
    assert actions_run(db_path) == ["ok"]


async def test_seed_004_shape_applies_and_runs(make_executor: Any, db_path: Path) -> None:
    clock = FrozenClock(T0)
    demo = DemoSubject(failure_rate=0, speed=1000, seed=1)
    ex: ActionExecutor = await make_executor(subject=demo, clock=clock)
    await store(ex, seed_dict())
    t = await ex.open_ticket("api 500s", severity="high", service="api", metadata={"store": "s1"})
    await run_idle(ex)
    clock.advance(5 * 60)
    await run_idle(ex)
    (run,) = await executions(ex)
    assert run.ticket_id == t.id
    assert actions_run(db_path)[:2] == ["check_health", "restart_store"]
    check, restart = proposals(db_path)[:2]
    assert (check["max_retries"], restart["max_retries"]) == (2, 1)  # the nodes' retry
    assert '"s1"' in restart["parameters"]
    assert run.state.nodes["done"].status == "skipped"
    assert run.status == "COMPLETED"


async def test_a_nodes_retry_waits_its_own_initial_delay_then_doubles(
    make_executor: Any, db_path: Path
) -> None:
    """The seed's per-node retry: ``attempts`` in all, exponential from ``initialDelayMs``
    (here a minute, far from the runner's own backoff), on a frozen clock."""
    clock = FrozenClock(T0)
    ex: ActionExecutor = await make_executor(clock=clock)
    retry = {"attempts": 3, "backoff": "exponential", "initialDelayMs": 60_000}
    await store(ex, linear(action("f", "fail", retry=retry), name="patient"))
    await ex.open_ticket("disk full", severity="high")
    waits = []
    for _ in range(2):
        await run_idle(ex)
        (p,) = proposals(db_path)
        assert p["status"] == "failed" and p["next_retry_at"] is not None
        due = datetime.fromisoformat(p["next_retry_at"].replace("Z", "+00:00"))
        waits.append((due - clock.now()).total_seconds())
        clock.advance(waits[-1])
    assert waits == [60.0, 120.0]
    await run_idle(ex)
    (p,) = proposals(db_path)
    assert (p["status"], p["retry_count"], p["next_retry_at"]) == ("failed", 2, None)
    (run,) = await executions(ex)
    assert run.status == "FAILED"
