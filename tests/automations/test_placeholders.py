"""Placeholders in action parameters: rendered as visible text, never as a format string."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from operator_core.automations.conditions import TicketFacts
from operator_core.automations.placeholders import (
    PlaceholderError,
    WorkflowFacts,
    has_placeholders,
    params_problem,
    render_params,
    text_problem,
)

TICKET = TicketFacts(
    id=7,
    title="api latency",
    severity="high",
    service="api",
    metadata={"store": "s2"},
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)
RUN = WorkflowFacts(name="api-high", version=3, execution_id=41)


def test_ticket_and_workflow_fields_render() -> None:
    params = {
        "message": "[{ticket.severity}] {ticket.title} via {workflow.name} v{workflow.version}",
        "store_id": "{ticket.metadata.store}",
        "ref": "run {workflow.execution_id} for #{ticket.id} ({incident.priority})",
        "count": 3,
    }
    assert render_params(params, TICKET, RUN) == {
        "message": "[high] api latency via api-high v3",
        "store_id": "s2",
        "ref": "run 41 for #7 (high)",
        "count": 3,
    }


def test_doubled_braces_are_literal() -> None:
    assert render_params({"body": '{{"t": "{ticket.title}"}}'}, TICKET, RUN) == {
        "body": '{"t": "api latency"}'
    }


def test_values_are_inserted_as_text_not_reinterpreted() -> None:
    hostile = TicketFacts(title="{workflow.name} {0.__class__} {{x}}\n\x1b[31m")
    out = render_params({"m": "{ticket.title}"}, hostile, RUN)
    assert out == {"m": "{workflow.name} {0.__class__} {{x}}\\n\\x1b[31m"}


def test_missing_metadata_key_is_an_error_at_render_time() -> None:
    with pytest.raises(PlaceholderError, match="no metadata 'zone'"):
        render_params({"z": "{ticket.metadata.zone}"}, TICKET, RUN)


def test_none_renders_empty() -> None:
    assert render_params({"a": "<{ticket.assignee}>"}, TICKET, RUN) == {"a": "<>"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{ticket.titel}", "unknown placeholder {ticket.titel}"),
        ("{workflow.id}", "unknown placeholder {workflow.id}"),
        ("{message}", "unknown placeholder {message}"),
        ("{ticket.metadata.}", "unknown placeholder"),
        ("half { brace", "unmatched '{'"),
        ("close } brace", "unmatched '}'"),
    ],
)
def test_unknown_or_malformed_placeholders(text: str, expected: str) -> None:
    problem = text_problem(text)
    assert problem is not None and problem.startswith(expected)
    with pytest.raises(PlaceholderError):
        render_params({"p": text}, TICKET, RUN)


def test_params_problem_names_the_parameter() -> None:
    found = params_problem({"a": "fine {ticket.id}", "b": "{ticket.nope}"})
    assert found is not None and found[0] == "b"
    assert params_problem({"a": 1, "b": "x"}) is None


def test_has_placeholders() -> None:
    assert has_placeholders("{ticket.id}")
    assert not has_placeholders("{{literal}}")
    assert not has_placeholders(5)
