"""Automations and their executions as the reading commands show them: the rows as
values and the reads that list them, with only light imports (the CLI's fast path, which
answers ``automations list``, ``automations executions`` and ``actions show`` without the
engine, reads them here). ``automations`` and ``executions`` write them and re-export these.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from operator_core.clock import from_db, to_db
from operator_core.model.execution_state import ExecutionState

OPEN_STATUSES = ("PENDING", "RUNNING")
STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")

# One automation by name (the UNIQUE index on name).
AUTOMATION_SQL = "SELECT * FROM automations WHERE name = ?"

# Every automation by name (the UNIQUE index on name).
LIST_AUTOMATIONS_SQL = "SELECT * FROM automations ORDER BY name"

# Newest executions first, optionally of one automation and in one status (the primary key
# backwards, or idx_executions_automation for one automation).
LIST_SQL = """
SELECT * FROM automation_executions
WHERE (CAST(:name AS TEXT) IS NULL OR automation_name = :name)
    AND (CAST(:status AS TEXT) IS NULL OR status = :status)
ORDER BY id DESC LIMIT :limit
"""

# Where a proposal came from: its execution, automation, version and node (primary keys).
PROPOSAL_ORIGIN_SQL = """
SELECT e.id, e.automation_name, e.version, p.automation_node, e.status,
    p.retry_initial_delay_seconds
FROM action_proposals p JOIN automation_executions e ON e.id = p.automation_execution_id
WHERE p.id = ?
"""


@dataclass(frozen=True)
class Automation:
    id: int
    name: str
    enabled: bool
    scope_type: str
    scope_team: str | None
    trigger_event: str
    current_version: int
    created_at: datetime | None
    created_by: str
    updated_at: datetime | None
    updated_by: str

    @property
    def scope(self) -> str:
        return f"team {self.scope_team}" if self.scope_type == "team" else "global"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "enabled": self.enabled,
            "scope": {"type": self.scope_type, "team": self.scope_team},
            "trigger": self.trigger_event,
            "version": self.current_version,
            "created_at": to_db(self.created_at),
            "created_by": self.created_by,
            "updated_at": to_db(self.updated_at),
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class Execution:
    id: int
    automation_id: int
    automation_name: str
    version: int
    definition: dict[str, Any]
    ticket_id: int
    trigger: str
    trigger_event_id: int | None
    status: str
    state: ExecutionState
    current_node: str | None
    next_wake_at: datetime | None
    started_by: str
    created_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self, with_definition: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "automation": self.automation_name,
            "version": self.version,
            "ticket_id": self.ticket_id,
            "trigger": self.trigger,
            "trigger_event_id": self.trigger_event_id,
            "status": self.status,
            "current_node": self.current_node,
            "completed_nodes": self.state.completed_nodes,
            "next_wake_at": to_db(self.next_wake_at),
            "started_by": self.started_by,
            "created_at": to_db(self.created_at),
            "updated_at": to_db(self.updated_at),
            "finished_at": to_db(self.finished_at),
            "error": self.error,
            "nodes": {k: r.to_json() for k, r in self.state.nodes.items()},
        }
        if with_definition:
            data["definition"] = self.definition
        return data


@dataclass(frozen=True)
class ProposalOrigin:
    """Where an automation's proposal came from (for ``actions show`` and the dashboard)."""

    execution_id: int
    automation: str
    version: int
    node: str | None
    execution_status: str
    # The node's own first retry delay (seconds), if it set one.
    retry_initial_delay: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "automation": self.automation,
            "version": self.version,
            "node": self.node,
            "execution_status": self.execution_status,
        }


def row_to_automation(row: sqlite3.Row) -> Automation:
    return Automation(
        id=row["id"],
        name=row["name"],
        enabled=bool(row["enabled"]),
        scope_type=row["scope_type"],
        scope_team=row["scope_team"],
        trigger_event=row["trigger_event"],
        current_version=row["current_version"],
        created_at=from_db(row["created_at"]),
        created_by=row["created_by"],
        updated_at=from_db(row["updated_at"]),
        updated_by=row["updated_by"],
    )


def row_to_execution(row: sqlite3.Row) -> Execution:
    return Execution(
        id=row["id"],
        automation_id=row["automation_id"],
        automation_name=row["automation_name"],
        version=row["version"],
        definition=json.loads(row["definition"]),
        ticket_id=row["ticket_id"],
        trigger=row["trigger"],
        trigger_event_id=row["trigger_event_id"],
        status=row["status"],
        state=ExecutionState.from_json(json.loads(row["state"])),
        current_node=row["current_node"],
        next_wake_at=from_db(row["next_wake_at"]),
        started_by=row["started_by"],
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
        finished_at=from_db(row["finished_at"]),
        error=row["error"],
    )


def find(conn: sqlite3.Connection, name: str) -> Automation | None:
    row = conn.execute(AUTOMATION_SQL, (name,)).fetchone()
    return row_to_automation(row) if row else None


def list_all(conn: sqlite3.Connection) -> list[Automation]:
    return [row_to_automation(r) for r in conn.execute(LIST_AUTOMATIONS_SQL)]


def list_executions(
    conn: sqlite3.Connection, automation: str | None, status: str | None, limit: int
) -> list[Execution]:
    rows = conn.execute(LIST_SQL, {"name": automation, "status": status, "limit": limit})
    return [row_to_execution(r) for r in rows]


def proposal_origin(conn: sqlite3.Connection, proposal_id: int) -> ProposalOrigin | None:
    row = conn.execute(PROPOSAL_ORIGIN_SQL, (proposal_id,)).fetchone()
    return None if row is None else ProposalOrigin(*row)
