"""Automations and their executions as the reading commands show them: the rows as
values and the reads that list them, with only light imports (the CLI's fast path, which
answers ``automations list``, ``automations executions`` and ``actions show`` without the
engine, reads them here). ``automations`` and ``executions`` write them and re-export these.
"""

from __future__ import annotations

from operator_core.clock import from_db, to_db
from operator_core.jsontext import loads

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    import sqlite3
    from datetime import datetime
    from typing import Any

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


class _Row:
    """A row's values, read-only, compared and shown by value: what ``@dataclass(frozen=True)``
    writes, for the fields a subclass annotates, without importing dataclasses (with inspect,
    ast and dis, more than a reading command's whole answer: docs/performance.md)."""

    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls) -> None:
        cls._fields = tuple(cls.__annotations__)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = dict(zip(self._fields, args, strict=False), **kwargs)
        if len(args) > len(self._fields) or values.keys() != set(self._fields):
            raise TypeError(f"{type(self).__name__} takes exactly {', '.join(self._fields)}")
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values() == self._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, self._values(), strict=True))
        return f"{type(self).__name__}({shown})"


class Automation(_Row):
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


class Execution(_Row):
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


class ProposalOrigin(_Row):
    """Where an automation's proposal came from (for ``actions show`` and the dashboard)."""

    execution_id: int
    automation: str
    version: int
    node: str | None
    execution_status: str
    # The node's own first retry delay (seconds), if it set one.
    retry_initial_delay: float | None

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
    # Here: ``automations list`` reads no execution (that module imports dataclasses).
    from operator_core.model.execution_state import ExecutionState

    return Execution(
        id=row["id"],
        automation_id=row["automation_id"],
        automation_name=row["automation_name"],
        version=row["version"],
        definition=loads(row["definition"]),
        ticket_id=row["ticket_id"],
        trigger=row["trigger"],
        trigger_event_id=row["trigger_event_id"],
        status=row["status"],
        state=ExecutionState.from_json(loads(row["state"])),
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
