"""Built-in definitions in the seed's template categories, to copy and edit.

Each is written in seed 004's shape (``actionType``/``config``, node positions for a graph
editor) and names the subject whose actions it uses: ``demo`` (``operator demo``) or
``runbook`` (``examples/runbook.toml``). Tests validate each against that subject.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from operator_core.errors import ConfigError

CATEGORIES = ("Ticketing", "Communication", "Auto-resolution")


@dataclass(frozen=True)
class Template:
    name: str
    category: str
    subject: str
    summary: str
    _definition: dict[str, Any]

    def definition(self, name: str | None = None) -> dict[str, Any]:
        """A fresh copy of the definition, renamed to ``name`` when given."""
        data = copy.deepcopy(self._definition)
        if name is not None:
            data["name"] = name
        return data

    def text(self, name: str | None = None) -> str:
        """The definition as the JSON file ``automations new`` writes."""
        return json.dumps(self.definition(name), indent=2, ensure_ascii=False) + "\n"


def _node(index: int, node_id: str, kind: str, data: dict[str, Any], x: int = 250) -> dict:
    return {"id": node_id, "type": kind, "position": {"x": x, "y": index * 120}, "data": data}


def _action(name: str, action: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"actionType": action, "name": name, "config": config, **extra}


def _edges(*pairs: tuple[str, str] | tuple[str, str, str]) -> list[dict[str, Any]]:
    edges: list[dict[str, Any]] = []
    for i, pair in enumerate(pairs, 1):
        edge: dict[str, Any] = {"id": f"e{i}", "source": pair[0], "target": pair[1]}
        if len(pair) == 3:
            edge["sourceHandle"] = pair[2]
        edges.append(edge)
    return edges


_RETRY = {"attempts": 3, "backoff": "exponential", "initialDelayMs": 2000}

_RESTART_IF_STILL_OPEN = {
    "name": "restart-if-still-open",
    "description": (
        "When a high-severity kv ticket opens: check health, wait 5 minutes, and if the "
        "ticket is still open restart the store named in its metadata."
    ),
    "version": 1,
    "nodes": [
        _node(0, "trigger", "trigger", {"name": "High-severity kv ticket opened"}),
        _node(1, "check", "action", _action("Check cluster health", "check_health", {})),
        _node(2, "wait", "delay", {"durationMinutes": 5, "name": "Wait 5 minutes"}),
        _node(
            3,
            "still-open",
            "condition",
            {"field": "status", "operator": "=", "value": "open", "name": "Still open?"},
        ),
        _node(
            4,
            "restart",
            "action",
            _action(
                "Restart the store",
                "restart_store",
                {"store_id": "{ticket.metadata.store}"},
                retry=_RETRY,
                reason="{ticket.title}: still open after 5 minutes",
            ),
            x=100,
        ),
        _node(4, "recheck", "action", _action("Confirm health", "check_health", {}), x=400),
    ],
    "edges": _edges(
        ("trigger", "check"),
        ("check", "wait"),
        ("wait", "still-open"),
        ("still-open", "restart", "true"),
        ("still-open", "recheck", "false"),
    ),
    "trigger": {
        "type": "incident_created",
        "conditions": [
            {"field": "priority", "value": "high"},
            {"field": "service", "value": "kv"},
        ],
    },
    "settings": {"timeout": "15min", "enabled": False},
    "scope": {"type": "global"},
}

_DRAIN_ON_ESCALATION = {
    "name": "drain-on-escalation",
    "description": (
        "When a kv ticket is escalated to critical, drain the store named in its metadata "
        "(drain_store always waits for an approval), then check health."
    ),
    "version": 1,
    "nodes": [
        _node(0, "trigger", "trigger", {"name": "Escalated to critical"}),
        _node(
            1,
            "drain",
            "action",
            _action("Drain the store", "drain_store", {"store_id": "{ticket.metadata.store}"}),
        ),
        _node(
            2,
            "check",
            "action",
            _action("Check cluster health", "check_health", {}, continueOnError=True),
        ),
    ],
    "edges": _edges(("trigger", "drain"), ("drain", "check")),
    "trigger": {
        "type": "escalation",
        "conditions": [
            {"field": "severity", "value": "critical"},
            {"field": "service", "value": "kv"},
        ],
    },
    "settings": {"timeout": "1h", "enabled": False},
    "scope": {"type": "global"},
}

_OPEN_INCIDENT = {
    "name": "open-incident-for-sev1",
    "description": (
        "When a critical ticket opens, open an incident in the tracker for the ticket's "
        "service and page on-call."
    ),
    "version": 1,
    "nodes": [
        _node(0, "trigger", "trigger", {"name": "Critical ticket opened"}),
        _node(
            1,
            "open-incident",
            "action",
            _action(
                "Open an incident",
                "open_incident",
                {"service": "{ticket.service}", "severity": "sev1", "page": True},
                retry=_RETRY,
            ),
        ),
    ],
    "edges": _edges(("trigger", "open-incident")),
    "trigger": {
        "type": "incident_created",
        "conditions": [{"field": "severity", "value": "critical"}],
    },
    "settings": {"timeout": "15min", "enabled": False},
    "scope": {"type": "global"},
}

_TELL_THE_TEAM = {
    "name": "tell-the-team-on-ack",
    "description": "When a ticket is acknowledged, post who has it to the team chat.",
    "version": 1,
    "nodes": [
        _node(0, "trigger", "trigger", {"name": "Ticket acknowledged"}),
        _node(
            1,
            "post",
            "action",
            _action(
                "Post to chat",
                "notify_chat",
                {"message": "{ticket.assignee} is on it ({workflow.name})"},
                retry=_RETRY,
            ),
        ),
    ],
    "edges": _edges(("trigger", "post")),
    "trigger": {
        "type": "state_changed",
        "stateTransition": {"from": "open", "to": "acknowledged"},
        "conditions": [],
    },
    "settings": {"timeout": "5min", "enabled": False},
    "scope": {"type": "global"},
}

TEMPLATES: tuple[Template, ...] = (
    Template(
        "restart-if-still-open",
        "Auto-resolution",
        "demo",
        "Check, wait 5 min, restart the store if the ticket is still open",
        _RESTART_IF_STILL_OPEN,
    ),
    Template(
        "drain-on-escalation",
        "Auto-resolution",
        "demo",
        "Drain a store (with approval) when its ticket is escalated to critical",
        _DRAIN_ON_ESCALATION,
    ),
    Template(
        "open-incident-for-sev1",
        "Ticketing",
        "runbook",
        "Open an incident in the tracker for every critical ticket",
        _OPEN_INCIDENT,
    ),
    Template(
        "tell-the-team-on-ack",
        "Communication",
        "runbook",
        "Post to chat who acknowledged a ticket",
        _TELL_THE_TEAM,
    ),
)


def get_template(name: str) -> Template:
    for template in TEMPLATES:
        if template.name == name:
            return template
    known = ", ".join(t.name for t in TEMPLATES)
    raise ConfigError(f"no template named {name!r} (templates: {known})")
