"""Placeholders in an action node's string parameters: ``{ticket.title}``, ``{workflow.name}``.

The same small language as runbook templates: ``{{`` and ``}}`` are literal braces, a lone
brace is an error, and every ``{...}`` must name a known field, checked before a definition
is stored. Rendering is one pass of substitution, never ``str.format``: a ticket title that
holds ``{workflow.name}`` or ``{0.__class__}`` is inserted as the text it is. Values are made
visible (a newline becomes ``\\n``) so a title cannot forge lines in a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from operator_core.automations.conditions import TicketFacts
from operator_core.safe_text import visible

TICKET_FIELDS = (
    "id",
    "title",
    "summary",
    "severity",
    "priority",
    "status",
    "service",
    "team",
    "assignee",
    "created_at",
    "acknowledged_at",
)
WORKFLOW_FIELDS = ("name", "version", "execution_id")
# The seed's templates say "incident"; Operator calls it a ticket.
_ROOTS = {"ticket": "ticket", "incident": "ticket", "workflow": "workflow"}
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class PlaceholderError(ValueError):
    """A placeholder is unknown or malformed, or names metadata the ticket lacks."""


@dataclass(frozen=True)
class WorkflowFacts:
    """The execution a parameter is rendered for."""

    name: str
    version: int
    execution_id: int | str


def _problem(ref: str) -> str | None:
    root, _, rest = ref.partition(".")
    kind = _ROOTS.get(root)
    if kind == "workflow" and rest in WORKFLOW_FIELDS:
        return None
    if kind == "ticket" and (rest in TICKET_FIELDS or _metadata_key(rest)):
        return None
    known = ", ".join(
        [*(f"ticket.{f}" for f in TICKET_FIELDS), "ticket.metadata.KEY"]
        + [f"workflow.{f}" for f in WORKFLOW_FIELDS]
    )
    return f"unknown placeholder {{{ref}}} (use {known})"


def _metadata_key(rest: str) -> str | None:
    key = rest.removeprefix("metadata.")
    return key if rest.startswith("metadata.") and key else None


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be rendered, or None."""
    for m in _TOKEN.finditer(text):
        token = m.group(0)
        if token in ("{", "}"):
            return f"unmatched {token!r} in {text!r} (write {token * 2} for a literal brace)"
        if token not in ("{{", "}}"):
            problem = _problem(m.group(1).strip())
            if problem is not None:
                return problem
    return None


def params_problem(params: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first (parameter, problem) among string parameters, or None."""
    for name, value in params.items():
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                return name, problem
    return None


def has_placeholders(value: Any) -> bool:
    """``value`` is a string whose rendered text depends on the ticket or execution."""
    return isinstance(value, str) and any(m.group(1) is not None for m in _TOKEN.finditer(value))


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _value(ref: str, ticket: TicketFacts, workflow: WorkflowFacts) -> str:
    root, _, rest = ref.partition(".")
    if _ROOTS[root] == "workflow":
        return _as_text(getattr(workflow, rest))
    key = _metadata_key(rest)
    if key is not None:
        if key not in ticket.metadata:
            raise PlaceholderError(f"{{{ref}}}: the ticket has no metadata {key!r}")
        return _as_text(ticket.metadata[key])
    return _as_text(getattr(ticket, "severity" if rest == "priority" else rest))


def render_text(text: str, ticket: TicketFacts, workflow: WorkflowFacts) -> str:
    problem = text_problem(text)
    if problem is not None:
        raise PlaceholderError(problem)

    def substitute(m: re.Match[str]) -> str:
        token = m.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return visible(_value(m.group(1).strip(), ticket, workflow))

    return _TOKEN.sub(substitute, text)


def render_params(
    params: Mapping[str, Any],
    ticket: TicketFacts | Mapping[str, Any],
    workflow: WorkflowFacts,
) -> dict[str, Any]:
    """The parameters with every string rendered; other values as they are."""
    facts = TicketFacts.of(ticket)
    return {
        name: render_text(value, facts, workflow) if isinstance(value, str) else value
        for name, value in params.items()
    }
