"""Rows to models and models to rows: the one module that knows pydantic's internals.

Rows are trusted (written by us, typed here), so models are built from them without another
validation pass: ``trusted`` fills a model's slots directly, the end of ``model_construct``
without its per-field loop. tests/core/test_hot_path.py holds it to ``model_construct``.
With ``views``, the plain objects of ``operator_core.model.views`` are built instead (no
pydantic: the dashboard draws its first frame before pydantic is imported).
"""

from __future__ import annotations

import operator

from operator_core.clock import from_db, to_db
from operator_core.errors import ActionNotFoundError, WorkflowNotFoundError
from operator_core.jsontext import loads
from operator_core.model.states import ActionStatus, ActionType, WorkflowStatus
from operator_core.model.views import AuditEventView, ProposalView, WorkflowView

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence
    from types import ModuleType
    from typing import Any, TypeVar

    from pydantic import BaseModel

    from operator_core.model.types import (
        ActionProposal,
        ActionRecord,
        AuditEvent,
        Ticket,
        WorkflowProposal,
    )

    M = TypeVar("M", bound=BaseModel)

_MODELS: ModuleType | None = None


def models() -> ModuleType:
    """``operator_core.model.types``, imported when the first model is made: reading for
    display needs no pydantic. The import statement waits for another thread's import of
    the module to finish; the module is kept once whole."""
    global _MODELS
    found = _MODELS
    if found is None:
        from operator_core.model import types as found

        _MODELS = found
    return found


_FIELDS: dict[type, frozenset[str]] = {}
_SHAPES: set[tuple[type, tuple[str, ...]]] = set()


def trusted(cls: type[M], values: dict[str, Any], shape: tuple[str, ...] | None = None) -> M:
    """``cls.model_construct(**values)`` for values that name every field (the dict becomes
    the model's own). Anything else goes through model_construct itself.

    A caller that always builds ``values`` with the same keys, in the same order, names
    them as ``shape``: they are then compared with the model's fields once, not per row."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(cls.model_fields)
    if shape is not None and (cls, shape) in _SHAPES:
        return _assembled(cls, values, set(names))
    if values.keys() != names or cls.__pydantic_post_init__ or cls.__pydantic_root_model__:
        return cls.model_construct(**values)
    if shape is not None and tuple(values) == shape:
        _SHAPES.add((cls, shape))
    return _assembled(cls, values, set(names))


def _assembled(cls: type[M], values: dict[str, Any], fields_set: set[str]) -> M:
    """A model instance holding ``values`` as they are (the end of ``model_construct``)."""
    set_dict, set_fields_set, set_extra, set_private = _MODEL_SLOTS or model_slots()
    m = cls.__new__(cls)
    set_dict(m, values)
    set_fields_set(m, fields_set)
    set_extra(m, None)
    set_private(m, None)
    return m


_MODEL_SLOTS: tuple[Callable[[Any, Any], None], ...] = ()
SLOT_NAMES = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")


def model_slots() -> tuple[Callable[[Any, Any], None], ...]:
    """The setters of the four slots every pydantic model has, as ``object.__setattr__``
    reaches them (found once, not looked up on the class for every model built)."""
    global _MODEL_SLOTS
    from pydantic import BaseModel

    _MODEL_SLOTS = tuple(BaseModel.__dict__[name].__set__ for name in SLOT_NAMES)
    return _MODEL_SLOTS


def with_id(p: ActionProposal, new_id: int) -> ActionProposal:
    """A copy of a stored proposal with its new id: ``model_copy(update={"id": new_id})``
    without its per-field work (a proposal the caller built was validated when built)."""
    values = p.__dict__.copy()
    values["id"] = new_id
    return _assembled(type(p), values, p.__pydantic_fields_set__ | {"id"})


# The columns of an action row that the model is built from, in the order read.
PROPOSAL_COLUMNS = (
    "id",
    "ticket_id",
    "action_name",
    "action_type",
    "parameters",
    "reason",
    "status",
    "proposed_at",
    "proposed_by",
    "validated_at",
    "cancelled_at",
    "cancel_reason",
    "requires_approval",
    "approved_at",
    "approved_by",
    "rejected_at",
    "rejected_by",
    "rejection_reason",
    "expires_at",
    "workflow_id",
    "execution_order",
    "depends_on_proposal_id",
    "delay_seconds",
    "scheduled_at",
    "retry_count",
    "max_retries",
    "next_retry_at",
    "last_error",
    "claimed_by",
    "lease_expires_at",
    "cancel_requested",
)

_ACTION_TYPES = {t.value: t for t in ActionType}
_STATUSES = {s.value: s for s in ActionStatus}
_WORKFLOW_STATUSES = {s.value: s for s in WorkflowStatus}


def _params(text: str | None) -> dict[str, Any]:
    return loads(text) if text and text != "{}" else {}


_PROPOSAL_GETTERS: dict[tuple[str, ...], Callable[[Any], tuple[Any, ...]]] = {}


def _proposal_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """One C call that picks the model's columns out of a row with these column names (a
    ``sqlite3.Row`` looked up by name compares every column name, per field, per row)."""
    getter = _PROPOSAL_GETTERS.get(names)
    if getter is None:
        getter = _PROPOSAL_GETTERS[names] = operator.itemgetter(
            *(names.index(column) for column in PROPOSAL_COLUMNS)
        )
    return getter


def row_to_proposal(row: sqlite3.Row, views: bool = False) -> ActionProposal:
    """The action of this row (a ``ProposalView`` of the same values with ``views``); runs
    for every claimed action and every row the dashboard shows."""
    (
        pid,
        ticket_id,
        action_name,
        action_type,
        parameters,
        reason,
        status,
        proposed_at,
        proposed_by,
        validated_at,
        cancelled_at,
        cancel_reason,
        requires_approval,
        approved_at,
        approved_by,
        rejected_at,
        rejected_by,
        rejection_reason,
        expires_at,
        workflow_id,
        execution_order,
        depends_on,
        delay_seconds,
        scheduled_at,
        retry_count,
        max_retries,
        next_retry_at,
        last_error,
        claimed_by,
        lease_expires_at,
        cancel_requested,
    ) = _proposal_getter(tuple(row.keys()))(row)
    values = dict(
        id=pid,
        ticket_id=ticket_id,
        action_name=action_name,
        action_type=_ACTION_TYPES.get(action_type) or ActionType(action_type),
        parameters=_params(parameters),
        reason=reason,
        status=_STATUSES.get(status) or ActionStatus(status),
        proposed_at=from_db(proposed_at),
        proposed_by=proposed_by,
        validated_at=from_db(validated_at),
        cancelled_at=from_db(cancelled_at),
        cancel_reason=cancel_reason,
        requires_approval=bool(requires_approval),
        approved_at=from_db(approved_at),
        approved_by=approved_by,
        rejected_at=from_db(rejected_at),
        rejected_by=rejected_by,
        rejection_reason=rejection_reason,
        expires_at=from_db(expires_at),
        workflow_id=workflow_id,
        execution_order=execution_order or 0,
        depends_on_proposal_id=depends_on,
        delay_seconds=float(delay_seconds or 0.0),
        scheduled_at=from_db(scheduled_at),
        retry_count=retry_count or 0,
        max_retries=max_retries if max_retries is not None else 3,
        next_retry_at=from_db(next_retry_at),
        last_error=last_error,
        claimed_by=claimed_by,
        lease_expires_at=from_db(lease_expires_at),
        cancel_requested=bool(cancel_requested),
    )
    if views:
        return ProposalView.of(values)  # type: ignore[no-any-return]
    return trusted(models().ActionProposal, values, PROPOSAL_COLUMNS)


def record_values(row: sqlite3.Row) -> dict[str, Any]:
    """An execution record's fields, decoded (the model's, or a view's for the fast path)."""
    success = row["success"]
    return dict(
        id=row["id"],
        proposal_id=row["proposal_id"],
        attempt=row["attempt"],
        started_at=from_db(row["started_at"]),
        completed_at=from_db(row["completed_at"]),
        success=None if success is None else bool(success),
        error_message=row["error_message"],
        result_data=loads(row["result_data"]) if row["result_data"] else None,
        host=row["host"],
        pid=row["pid"],
        pgid=row["pgid"],
        process_start=row["process_start"],
    )


def row_to_record(row: sqlite3.Row) -> ActionRecord:
    return models().ActionRecord(**record_values(row))  # type: ignore[no-any-return]


_OPENED_RECORD_SHAPE = (
    "id",
    "proposal_id",
    "attempt",
    "started_at",
    "completed_at",
    "success",
    "error_message",
    "result_data",
    "host",
    "pid",
    "pgid",
    "process_start",
)


def opened_record(record_id: int, proposal_id: int, attempt: int, started_at: Any) -> ActionRecord:
    """The record of an attempt just opened by a claim (nothing of it known yet but when)."""
    return trusted(
        models().ActionRecord,
        dict(
            id=record_id,
            proposal_id=proposal_id,
            attempt=attempt,
            started_at=started_at,
            completed_at=None,
            success=None,
            error_message=None,
            result_data=None,
            host=None,
            pid=None,
            pgid=None,
            process_start=None,
        ),
        _OPENED_RECORD_SHAPE,
    )


def row_to_workflow(row: sqlite3.Row, views: bool = False) -> WorkflowProposal:
    status = row["status"]
    values = dict(
        id=row["id"],
        name=row["name"],
        description=row["description"] or "",
        ticket_id=row["ticket_id"],
        status=_WORKFLOW_STATUSES.get(status) or WorkflowStatus(status),
        created_at=from_db(row["created_at"]),
        requires_approval=bool(row["requires_approval"]),
        approved_at=from_db(row["approved_at"]),
        approved_by=row["approved_by"],
        rejected_at=from_db(row["rejected_at"]),
        rejected_by=row["rejected_by"],
        rejection_reason=row["rejection_reason"],
        proposed_by=row["proposed_by"],
    )
    if views:
        return WorkflowView.of(values)  # type: ignore[no-any-return]
    return trusted(models().WorkflowProposal, values)


def row_to_ticket(row: sqlite3.Row) -> Ticket:
    return models().Ticket(  # type: ignore[no-any-return]
        id=row["id"],
        title=row["title"],
        summary=row["summary"],
        severity=row["severity"],
        status=row["status"],
        service=row["service"],
        team=row["team"],
        assignee=row["assignee"],
        metadata=loads(row["metadata"]),
        created_at=from_db(row["created_at"]),
        acknowledged_at=from_db(row["acknowledged_at"]),
        resolved_at=from_db(row["resolved_at"]),
        updated_at=from_db(row["updated_at"]),
    )


def row_to_audit(row: sqlite3.Row, views: bool = False) -> AuditEvent:
    values = dict(
        id=row["id"],
        proposal_id=row["proposal_id"],
        workflow_id=row["workflow_id"],
        event_type=row["event_type"],
        event_data=loads(row["event_data"]),
        actor=row["actor"],
        timestamp=from_db(row["timestamp"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )
    if views:
        return AuditEventView.of(values)  # type: ignore[no-any-return]
    return trusted(models().AuditEvent, values)


# One action by primary key.
PROPOSAL_SQL = "SELECT * FROM action_proposals WHERE id = ?"

# One action's attempts, oldest first (idx_action_records_proposal).
RECORDS_SQL = "SELECT * FROM action_records WHERE proposal_id = ? ORDER BY id LIMIT ?"

# One workflow by primary key.
WORKFLOW_SQL = "SELECT * FROM workflows WHERE id = ?"

# One ticket by primary key.
TICKET_SQL = "SELECT * FROM tickets WHERE id = ?"


def fetch_proposal(conn: sqlite3.Connection, proposal_id: int) -> ActionProposal:
    row = conn.execute(PROPOSAL_SQL, (proposal_id,)).fetchone()
    if row is None:
        raise ActionNotFoundError(f"no action with id {proposal_id}")
    return row_to_proposal(row)


def fetch_workflow(conn: sqlite3.Connection, workflow_id: int) -> WorkflowProposal:
    row = conn.execute(WORKFLOW_SQL, (workflow_id,)).fetchone()
    if row is None:
        raise WorkflowNotFoundError(f"no workflow with id {workflow_id}")
    return row_to_workflow(row)


# A new action row, every column given (those the model leaves unset store NULL).
INSERT_PROPOSAL_SQL = """
INSERT INTO action_proposals (ticket_id, action_name, action_type, parameters, reason, status,
    proposed_at, proposed_by, validated_at, cancelled_at, cancel_reason, requires_approval,
    approved_at, approved_by, rejected_at, rejected_by, rejection_reason, expires_at,
    workflow_id, execution_order, depends_on_proposal_id, delay_seconds, scheduled_at,
    retry_count, max_retries, next_retry_at, last_error, created_at, updated_at,
    proposed_identity)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def insert_proposal(conn: sqlite3.Connection, p: ActionProposal, identity: str) -> int:
    """Store a new action; returns its id."""
    # Here, not at the top: a reading command imports this module, and this imports more.
    from operator_core.db.dialect import insert_id

    return insert_id(conn, INSERT_PROPOSAL_SQL, proposal_values(p, identity))


def insert_proposals(
    conn: sqlite3.Connection, ps: Sequence[ActionProposal], identity: str
) -> list[int]:
    """Store new actions in this order; returns their ids. On a connection that inserts
    many rows at once (PostgreSQL's ``insert_ids``: one pipeline), that."""
    own = getattr(conn, "insert_ids", None)
    if own is not None:
        return list(own(INSERT_PROPOSAL_SQL, [proposal_values(p, identity) for p in ps]))
    return [insert_proposal(conn, p, identity) for p in ps]


def proposal_values(p: ActionProposal, identity: str) -> tuple[Any, ...]:
    """A new action's row, in INSERT_PROPOSAL_SQL's column order."""
    from operator_core.db.encode import dumps  # here: see insert_proposal

    # Read from the model's __dict__: its own attribute lookup goes through a __getattr__
    # hook, for each of 29 columns.
    v = p.__dict__
    proposed_at = to_db(v["proposed_at"])
    return (
        v["ticket_id"],
        v["action_name"],
        v["action_type"].value,
        dumps(v["parameters"]),
        v["reason"],
        v["status"].value,
        proposed_at,
        v["proposed_by"],
        proposed_at if v["validated_at"] is v["proposed_at"] else to_db(v["validated_at"]),
        to_db(v["cancelled_at"]),
        v["cancel_reason"],
        int(v["requires_approval"]),
        to_db(v["approved_at"]),
        v["approved_by"],
        to_db(v["rejected_at"]),
        v["rejected_by"],
        v["rejection_reason"],
        to_db(v["expires_at"]),
        v["workflow_id"],
        v["execution_order"],
        v["depends_on_proposal_id"],
        v["delay_seconds"],
        to_db(v["scheduled_at"]),
        v["retry_count"],
        v["max_retries"],
        to_db(v["next_retry_at"]),
        v["last_error"],
        proposed_at,
        proposed_at,
        identity,
    )
