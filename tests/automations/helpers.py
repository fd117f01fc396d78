"""Small builders for automation tests: definitions as plain dicts, in the seed's shape."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def seed_dict() -> dict[str, Any]:
    """Seed 004's example definition (fixtures/seed_004.json), fresh for each caller."""
    data: dict[str, Any] = json.loads((FIXTURES / "seed_004.json").read_text())
    return copy.deepcopy(data)


def linear(*nodes: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A definition whose nodes follow one another after a trigger node "t"."""
    all_nodes = [{"id": "t", "type": "trigger", "data": {}}, *nodes]
    edges = [
        {"id": f"e{i}", "source": a["id"], "target": b["id"]}
        for i, (a, b) in enumerate(zip(all_nodes, all_nodes[1:], strict=False))
    ]
    data: dict[str, Any] = {
        "name": "auto",
        "description": "test automation",
        "nodes": all_nodes,
        "edges": edges,
        "trigger": {"type": "incident_created"},
        "settings": {"timeout": "15min", "enabled": True},
    }
    data.update(top)
    return data


def action(node_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "action", "data": {"action": name, **extra}}


def delay(node_id: str, minutes: float) -> dict[str, Any]:
    return {"id": node_id, "type": "delay", "data": {"durationMinutes": minutes}}


def condition(node_id: str, field: str, value: str) -> dict[str, Any]:
    return {"id": node_id, "type": "condition", "data": {"field": field, "value": value}}


def write(tmp_path: Path, data: dict[str, Any], name: str = "auto.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path
