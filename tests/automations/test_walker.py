"""Executions walk their frozen definition: branches, delays, timeouts, failures, cancels.

Time is passed in explicitly: a delay of five minutes is tested by calling with a later
``now``, never by sleeping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from operator_core.automations.conditions import TicketFacts
from operator_core.automations.definition import AutomationDefinition, parse_definition
from operator_core.automations.placeholders import WorkflowFacts
from operator_core.automations.walker import (
    ActionFinished,
    ActionProposed,
    Advance,
    Cancel,
    CancelProposal,
    Event,
    ExecutionState,
    Finished,
    ProposeAction,
    Start,
    Tick,
    WaitUntil,
    advance,
)

from tests.automations.helpers import action, condition, delay, linear, seed_dict

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OPEN = TicketFacts(id=7, title="api down", severity="high", status="open", metadata={"store": "s2"})
RUN = WorkflowFacts(name="api-high-severity", version=2, execution_id=41)


class Run:
    """One execution driven by explicit events and times."""

    def __init__(self, d: AutomationDefinition | dict[str, Any], ticket: TicketFacts = OPEN):
        self.d = d if isinstance(d, AutomationDefinition) else parse_definition(d)
        self.state = ExecutionState()
        self.ticket = ticket

    def send(self, event: Event, minutes: float = 0) -> Advance:
        result = advance(
            self.d,
            self.state,
            event,
            now=T0 + timedelta(minutes=minutes),
            ticket=self.ticket,
            workflow=RUN,
        )
        self.state = result.state
        return result

    def status(self, node_id: str) -> str:
        return self.state.nodes[node_id].status


def test_seed_definition_true_branch_end_to_end() -> None:
    run = Run(seed_dict())
    steps = run.send(Start()).steps
    assert steps == [
        ProposeAction(
            node_id="check",
            action="check_health",
            parameters={},
            reason='automation "api-high-severity" v2, node "check"',
            max_retries=2,
            retry_initial_delay_seconds=1.0,
        )
    ]
    assert run.state.status == "RUNNING" and run.state.current_node == "check"
    assert run.send(ActionProposed("check", 11)).steps == []
    assert run.state.nodes["check"].proposal_id == 11
    assert run.send(ActionFinished("check", ok=True), minutes=1).steps == [
        WaitUntil("wait", T0 + timedelta(minutes=6))
    ]
    assert run.state.next_wake() == T0 + timedelta(minutes=6)
    assert run.send(Tick(), minutes=5).steps == []  # not yet due
    steps = run.send(Tick(), minutes=6).steps
    assert [type(s) for s in steps] == [ProposeAction]
    assert steps[0].node_id == "restart"  # type: ignore[union-attr]
    assert steps[0].parameters == {"store_id": "s2"}  # type: ignore[union-attr]
    assert run.state.nodes["still-open"].branch is True
    assert run.status("done") == "skipped"
    assert run.send(ActionFinished("restart", ok=True), minutes=7).steps == [Finished("COMPLETED")]
    assert run.state.status == "COMPLETED"
    assert run.state.finished_at == T0 + timedelta(minutes=7)
    assert run.state.completed_nodes == [
        "trigger-1",
        "check",
        "wait",
        "still-open",
        "restart",
        "done",
    ]


def test_false_branch_when_the_ticket_was_resolved_meanwhile() -> None:
    run = Run(seed_dict())
    run.send(Start())
    run.send(ActionFinished("check", ok=True))
    run.ticket = TicketFacts(**{**OPEN.__dict__, "status": "resolved"})
    steps = run.send(Tick(), minutes=5).steps
    assert [s.node_id for s in steps if isinstance(s, ProposeAction)] == ["done"]
    assert run.status("restart") == "skipped"
    assert run.state.nodes["still-open"].branch is False


def branchy() -> dict[str, Any]:
    """t -> c; true: a -> a2 -> join; false: b -> join."""
    data = linear(
        condition("c", "severity", "high"),
        action("a", "ok"),
        action("a2", "ok"),
        action("b", "ok"),
        action("join", "ok"),
    )
    data["edges"] = [
        {"id": "e0", "source": "t", "target": "c"},
        {"id": "e1", "source": "c", "target": "a", "sourceHandle": "true"},
        {"id": "e2", "source": "a", "target": "a2"},
        {"id": "e3", "source": "c", "target": "b", "sourceHandle": "false"},
        {"id": "e4", "source": "a2", "target": "join"},
        {"id": "e5", "source": "b", "target": "join"},
    ]
    return data


def test_everything_only_behind_the_untaken_branch_is_skipped() -> None:
    run = Run(branchy(), TicketFacts(severity="low"))
    proposed = [s.node_id for s in run.send(Start()).steps if isinstance(s, ProposeAction)]
    assert proposed == ["b"]
    assert run.status("a") == run.status("a2") == "skipped"
    # join is reachable through the taken branch: it runs after b.
    steps = run.send(ActionFinished("b", ok=True)).steps
    assert [s.node_id for s in steps if isinstance(s, ProposeAction)] == ["join"]
    assert run.send(ActionFinished("join", ok=True)).steps == [Finished("COMPLETED")]


def test_fan_out_proposes_both_actions_at_once() -> None:
    data = linear(action("a", "ok"), action("b", "ok"))
    data["edges"] = [
        {"id": "e1", "source": "t", "target": "a"},
        {"id": "e2", "source": "t", "target": "b"},
    ]
    run = Run(data)
    assert [s.node_id for s in run.send(Start()).steps] == ["a", "b"]  # type: ignore[union-attr]
    run.send(ActionFinished("a", ok=True))
    assert run.state.status == "RUNNING"
    assert run.send(ActionFinished("b", ok=True)).steps == [Finished("COMPLETED")]


def test_a_failing_node_fails_the_execution_and_nothing_after_it_runs() -> None:
    run = Run(linear(action("a", "fail"), action("b", "ok")))
    run.send(Start())
    steps = run.send(ActionFinished("a", ok=False, error="boom"), minutes=1).steps
    assert steps == [Finished("FAILED", 'node "a" failed: boom')]
    assert run.status("a") == "failed"
    assert run.state.nodes["a"].error == "boom"
    assert "b" not in run.state.nodes


def test_continue_on_error_carries_on_after_a_failure() -> None:
    run = Run(linear(action("a", "fail", continueOnError=True), action("b", "ok")))
    run.send(Start())
    steps = run.send(ActionFinished("a", ok=False, error="boom")).steps
    assert [s.node_id for s in steps] == ["b"]  # type: ignore[union-attr]
    assert run.send(ActionFinished("b", ok=True)).steps == [Finished("COMPLETED")]
    assert run.status("a") == "failed"


def test_timeout_fails_the_execution_and_cancels_its_pending_proposal() -> None:
    run = Run(linear(action("a", "slow"), settings={"timeout": "5min"}))
    run.send(Start())
    run.send(ActionProposed("a", 11))
    assert run.state.next_wake() == T0 + timedelta(minutes=5)
    assert run.send(Tick(), minutes=4.9).steps == []
    steps = run.send(Tick(), minutes=5).steps
    assert steps == [
        CancelProposal("a", 11, "timed out after 5min"),
        Finished("FAILED", "timed out after 5min"),
    ]
    assert run.status("a") == "cancelled"


def test_timeout_during_a_delay() -> None:
    run = Run(linear(delay("wait", 4), action("a", "ok"), settings={"timeout": "5min"}))
    assert run.send(Start()).steps == [WaitUntil("wait", T0 + timedelta(minutes=4))]
    # The runner was down past both times: the deadline wins, nothing is proposed late.
    steps = run.send(Tick(), minutes=30).steps
    assert steps == [Finished("FAILED", "timed out after 5min")]
    assert run.status("wait") == "cancelled"


def test_cancel_stops_everything_in_flight() -> None:
    data = linear(action("a", "ok"), action("b", "ok"))
    data["edges"] = [
        {"id": "e1", "source": "t", "target": "a"},
        {"id": "e2", "source": "t", "target": "b"},
    ]
    run = Run(data)
    run.send(Start())
    run.send(ActionProposed("a", 1))
    steps = run.send(Cancel("ticket resolved")).steps
    assert steps == [
        CancelProposal("a", 1, "ticket resolved"),
        Finished("CANCELLED", "ticket resolved"),
    ]
    assert run.status("b") == "cancelled"  # proposed but its id never reported


def test_zero_delay_passes_at_once() -> None:
    run = Run(linear(delay("wait", 0), action("a", "ok")))
    assert [type(s) for s in run.send(Start()).steps] == [ProposeAction]


def test_fractional_delay_minutes() -> None:
    run = Run(linear(delay("wait", 0.5), action("a", "ok")))
    assert run.send(Start()).steps == [WaitUntil("wait", T0 + timedelta(seconds=30))]


def test_missing_metadata_fails_the_node_at_proposal_time() -> None:
    data = linear(action("a", "flaky", parameters={"times": "{ticket.metadata.times}"}))
    run = Run(data)
    steps = run.send(Start()).steps
    assert steps == [
        Finished(
            "FAILED",
            "node \"a\" failed: {ticket.metadata.times}: the ticket has no metadata 'times'",
        )
    ]


def test_late_and_duplicate_reports_change_nothing() -> None:
    run = Run(linear(action("a", "ok")))
    run.send(Start())
    run.send(ActionFinished("a", ok=True))
    before = run.state.to_json()
    assert run.send(ActionFinished("a", ok=False, error="late")).steps == []
    assert run.send(Cancel("too late")).steps == []
    assert run.state.to_json() == before


def test_advance_leaves_the_given_state_alone() -> None:
    d = parse_definition(linear(action("a", "ok")))
    state = ExecutionState()
    advance(d, state, Start(), now=T0, ticket=OPEN, workflow=RUN)
    assert state == ExecutionState()


def test_state_round_trips_through_json() -> None:
    run = Run(seed_dict())
    run.send(Start())
    run.send(ActionProposed("check", 11))
    run.send(ActionFinished("check", ok=True), minutes=1)
    stored = json.loads(json.dumps(run.state.to_json()))
    assert ExecutionState.from_json(stored) == run.state
    # and the walk continues from the stored copy
    run.state = ExecutionState.from_json(stored)
    assert [type(s) for s in run.send(Tick(), minutes=6).steps] == [ProposeAction]


def test_reason_and_retry_come_from_the_node() -> None:
    node = action(
        "a",
        "ok",
        reason="{workflow.name} for ticket {ticket.id}",
        retry={"attempts": 4, "initialDelayMs": 250},
    )
    step = Run(linear(node)).send(Start()).steps[0]
    assert isinstance(step, ProposeAction)
    assert step.reason == "api-high-severity for ticket 7"
    assert (step.max_retries, step.retry_initial_delay_seconds) == (3, 0.25)


def test_a_failure_cancels_the_sibling_still_running() -> None:
    data = linear(action("a", "fail"), action("b", "slow", parameters={"seconds": 60}))
    data["edges"] = [
        {"id": "e1", "source": "t", "target": "a"},
        {"id": "e2", "source": "t", "target": "b"},
    ]
    run = Run(data)
    run.send(Start())
    run.send(ActionProposed("a", 1))
    run.send(ActionProposed("b", 2))
    steps = run.send(ActionFinished("a", ok=False, error="boom")).steps
    assert steps == [
        CancelProposal("b", 2, 'node "a" failed: boom'),
        Finished("FAILED", 'node "a" failed: boom'),
    ]
    assert run.status("b") == "cancelled"
