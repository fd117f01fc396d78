"""How actions persist: ActionDB, one long-lived SQLite connection per process.

Every public method runs as a single function on aiosqlite's connection thread, so a state
transition and its audit event are one transaction that no other coroutine can interleave
with. Writes take the write lock up front (BEGIN IMMEDIATE) and each transition is guarded by
the state it expects; a transition that finds the row elsewhere raises InvalidTransitionError.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import compress
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import aiosqlite

from operator_core.clock import SYSTEM_CLOCK, Clock, from_db, to_db
from operator_core.db import health, inuse
from operator_core.db.checkpoint import SAFETY_NET_PAGES, Checkpointer
from operator_core.db.killfile import KILL_REASON, PENDING_REASON, KillFile, KillNotice
from operator_core.db.lost import LOST_ATTEMPTS_SQL, LostAttempt, LostNote
from operator_core.db.policy import (
    ApprovalGate,
    check_four_eyes,
    expire_at_approval,
    held_entries,
    lapsed,
    screen_claims,
    with_approval,
    workflow_expiry,
)
from operator_core.db.schema import LATEST_VERSION, migrate
from operator_core.env import env_number
from operator_core.errors import (
    ActionNotFoundError,
    ApprovalError,
    DatabaseError,
    InvalidTransitionError,
    ObserveOnlyError,
    WorkflowNotFoundError,
)
from operator_core.identity import actor_text, current_identity
from operator_core.model.states import ActionStatus, ActionType, WorkflowStatus
from operator_core.model.views import AuditEventView, ProposalView, WorkflowView
from operator_core.notify import Notifier

if TYPE_CHECKING:
    from pydantic import BaseModel

    from operator_core.model.types import (
        ActionProposal,
        ActionRecord,
        AuditEvent,
        KillSwitchResult,
        Ticket,
        WorkflowProposal,
    )

T = TypeVar("T")

_MODELS: ModuleType | None = None


def _models() -> ModuleType:
    """``operator_core.model.types``, imported when the first model is made rather than
    with this module: reading for display (``views=True``) needs no pydantic, and the
    dashboard draws its first frame before pydantic is imported. The import statement waits
    for another thread's import of the module to finish; the module is kept once whole."""
    global _MODELS
    models = _MODELS
    if models is None:
        from operator_core.model import types as models

        _MODELS = models
    return models


def _stopping() -> ModuleType:
    """``db.stopping`` (the kill switch's transaction, ending actions asked to stop), which
    builds on this module's helpers: imported where first used, once this one is whole."""
    from operator_core.db import stopping

    return stopping


GENESIS_HASH = "0" * 64
KILL_SWITCH_ACTOR_REASON = KILL_REASON

# An action the runner may start now: validated (or a due retry), approved or needing no
# approval, not asked to stop, due, and its dependency completed.
READY_SQL = """
    p.cancel_requested = 0
    AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
    AND (
        (p.status = 'validated' AND (p.scheduled_at IS NULL OR p.scheduled_at <= :now))
        OR (p.status = 'failed' AND p.next_retry_at IS NOT NULL AND p.next_retry_at <= :now)
    )
    AND (p.depends_on_proposal_id IS NULL OR EXISTS (
        SELECT 1 FROM action_proposals d
        WHERE d.id = p.depends_on_proposal_id AND d.status = 'completed'))
"""


# The columns of an action row that the model is built from, in the order read.
_PROPOSAL_COLUMNS = (
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


# The claim: due validated work and due retries, each read in order from its own partial
# index (idx_ready_validated, idx_retry_due) and merged under one LIMIT; never a sort of the
# whole backlog. It returns only the columns the claimed action's model is built from (each
# column returned is one more value converted for every row).
CLAIM_SQL = f"""
UPDATE action_proposals SET status = 'executing', claimed_by = :runner,
    lease_expires_at = :lease, next_retry_at = NULL, finished_at = NULL, updated_at = :now
WHERE id IN (
    SELECT id FROM (
        SELECT id, k FROM (
            SELECT p.id AS id, COALESCE(p.scheduled_at, p.proposed_at) AS k
            FROM action_proposals p INDEXED BY idx_ready_validated
            WHERE p.status = 'validated'
              AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
              AND COALESCE(p.scheduled_at, p.proposed_at) <= :now
              AND p.cancel_requested = 0
              AND (:only IS NULL OR p.id = :only)
              AND (p.depends_on_proposal_id IS NULL OR EXISTS (
                  SELECT 1 FROM action_proposals d
                  WHERE d.id = p.depends_on_proposal_id AND d.status = 'completed'))
            ORDER BY COALESCE(p.scheduled_at, p.proposed_at), p.id
            LIMIT :lim)
        UNION ALL
        SELECT id, k FROM (
            SELECT p.id AS id, p.next_retry_at AS k
            FROM action_proposals p INDEXED BY idx_retry_due
            WHERE p.status = 'failed' AND p.next_retry_at IS NOT NULL
              AND p.next_retry_at <= :now
              AND (p.requires_approval = 0 OR p.approved_at IS NOT NULL)
              AND p.cancel_requested = 0
              AND (:only IS NULL OR p.id = :only)
            ORDER BY p.next_retry_at, p.id
            LIMIT :lim)
    )
    ORDER BY k, id
    LIMIT :lim)
RETURNING {", ".join(_PROPOSAL_COLUMNS)}
"""

# The status index leaves validated actions out (schema v4), and SQLite reads through a
# partial index only when the query states its condition: every query that looks actions up
# by status says this too.
_IN_STATE_INDEX = "status <> 'validated'"
_EXECUTING = f"status = 'executing' AND {_IN_STATE_INDEX}"

# The next time something becomes due: only future times count (a past one is either
# claimable now or waiting for something else, such as an approval).
NEXT_WAKEUP_SQL = f"""
SELECT MIN(t) FROM (
    SELECT MIN(scheduled_at) AS t FROM action_proposals INDEXED BY idx_validated_scheduled
        WHERE status = 'validated' AND scheduled_at IS NOT NULL AND scheduled_at > :now
    UNION ALL SELECT MIN(next_retry_at) FROM action_proposals INDEXED BY idx_retry_due
        WHERE status = 'failed' AND next_retry_at IS NOT NULL AND next_retry_at > :now
    UNION ALL SELECT MIN(expires_at) FROM action_proposals INDEXED BY idx_action_proposals_expiry
        WHERE expires_at IS NOT NULL AND approved_at IS NULL AND expires_at > :now
    UNION ALL SELECT MIN(lease_expires_at) FROM action_proposals
        INDEXED BY idx_action_proposals_state
        WHERE {_EXECUTING} AND lease_expires_at > :now)
"""


# The three records below are built for every action a runner handles: as named tuples,
# immutable like the frozen dataclasses they were, they cost a quarter of the time to make
# (a frozen dataclass sets each field through object.__setattr__).


class AuditEntry(NamedTuple):
    """An audit event to append inside the same transaction as the change it describes."""

    event_type: str
    event_data: dict[str, Any]
    actor: str
    proposal_id: int | None = None
    workflow_id: int | None = None


class Claim(NamedTuple):
    """An action claimed by a runner, with the record of this attempt."""

    proposal: ActionProposal
    record: ActionRecord


class AttemptResult(NamedTuple):
    """How one attempt ended, as the subject reported it."""

    success: bool
    result_data: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = True
    retry_delay_seconds: float | None = None


PAGE_SIZE = 2048
"""Page size of a new database. Every commit writes each page it touched to the WAL whole
(and a checkpoint copies it back); a proposal touches about seven pages, each to change one
small row or index entry. Half the default size halves those bytes: about a fifth less time
per one-by-one proposal commit, measured against 4096 (1024 gained nothing more)."""


# The scheduled queue and the retry backlog, each read through its own partial index (the
# planner, without statistics, would rather walk every validated or failed action of the
# history through the status index, then sort them).
_SCHEDULED = (
    "INDEXED BY idx_validated_scheduled WHERE scheduled_at IS NOT NULL AND status = 'validated'"
)
_RETRY_WAITING = "INDEXED BY idx_retry_due WHERE next_retry_at IS NOT NULL AND status = 'failed'"

# Every validated action is in exactly one of two partial indexes: ready to run once due
# (idx_ready_validated) or waiting for its approval (idx_awaiting_approval).
_VALIDATED_READY = "status = 'validated' AND (requires_approval = 0 OR approved_at IS NOT NULL)"
_AWAITING = "status IN ('proposed', 'validated') AND requires_approval <> 0 AND approved_at IS NULL"
_AWAITING_APPROVAL = f"WHERE {_AWAITING} AND workflow_id IS NULL"
# What a cancel stops: proposed and validated actions and those waiting for a retry.
_CANCELLABLE = (
    "status IN ('proposed', 'validated') OR (status = 'failed' AND next_retry_at IS NOT NULL)"
)
# The same sets by id, each part read through its own partial index (the planner does not
# match partial indexes to the branches of an OR): the kill switch never walks the history.
_VALIDATED_IDS = (
    f"SELECT id FROM action_proposals WHERE {_VALIDATED_READY} UNION ALL "
    f"SELECT id FROM action_proposals WHERE {_AWAITING} AND status = 'validated'"
)
_PROPOSED_IDS = f"SELECT id FROM action_proposals WHERE status = 'proposed' AND {_IN_STATE_INDEX}"
_RETRY_WAITING_IDS = f"SELECT id FROM action_proposals {_RETRY_WAITING}"
_CANCELLABLE_IDS = f"{_PROPOSED_IDS} UNION ALL {_VALIDATED_IDS} UNION ALL {_RETRY_WAITING_IDS}"
_ALL_CANCELLABLE = f"id IN ({_CANCELLABLE_IDS})"


@dataclass(frozen=True)
class Counts:
    """Counts for the header and ``operator status``."""

    by_status: dict[str, int]
    awaiting_approval: int
    workflows_awaiting_approval: int
    workflows_open: int
    scheduled: int
    retry_waiting: int
    executing: int


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


# The C encoder ``_ENCODER.encode`` ends up calling, called directly: about half the time
# for the small dictionaries an action writes (events, parameters). Without the circular
# reference check: a circular value recurses until RecursionError, and then goes through
# ``_ENCODER`` for its usual ValueError.
_C_ENCODE = (
    json.encoder.c_make_encoder(
        None, str, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True
    )
    if json.encoder.c_make_encoder is not None
    else None
)


def _json(value: Any) -> str:
    if _C_ENCODE is None:
        return _ENCODER.encode(value)
    try:
        return "".join(_C_ENCODE(value, 0))
    except RecursionError:
        return _ENCODER.encode(value)


def _audit_hash(
    prev_hash: str,
    proposal_id: int | None,
    workflow_id: int | None,
    event_type: str,
    event_data: str,
    actor: str,
    timestamp: str,
) -> str:
    """SHA-256 of the event's fields as one JSON array (a tuple encodes as a list)."""
    payload = _json((prev_hash, proposal_id, workflow_id, event_type, event_data, actor, timestamp))
    return hashlib.sha256(payload.encode()).hexdigest()


class _Connection(sqlite3.Connection):
    """Our connection: remembers the audit chain's head within a write transaction, so a
    transaction appending many events reads it once (nobody else can append meanwhile); and
    knows its database's kill file, which claims, proposals and resume honour."""

    audit_head: str | None = None
    kill_file: KillFile | None = None


_INSERT_AUDIT = (
    "INSERT INTO action_audit_log (proposal_id, workflow_id, event_type, event_data, actor,"
    " timestamp, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# The same for events outside any workflow (most of them), which leaves workflow_id NULL
# without binding a None (see _proposal_insert for what a bound None costs).
_INSERT_AUDIT_NO_WORKFLOW = (
    "INSERT INTO action_audit_log (proposal_id, event_type, event_data, actor,"
    " timestamp, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _audit_head(conn: sqlite3.Connection) -> str:
    prev = getattr(conn, "audit_head", None)
    if prev is None:
        row = conn.execute("SELECT hash FROM action_audit_log ORDER BY id DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS_HASH
    return prev


def _audit_row(
    entry: AuditEntry, now: str, prev: str, proposal_id: int | None = None
) -> tuple[Any, ...]:
    """The event's row, chained to ``prev``; ``proposal_id``, if given, in place of the
    entry's own (a proposal's events are written before it has one)."""
    if proposal_id is None:
        proposal_id = entry.proposal_id
    data = _json(entry.event_data)
    digest = _audit_hash(
        prev, proposal_id, entry.workflow_id, entry.event_type, data, entry.actor, now
    )
    return (proposal_id, entry.workflow_id, entry.event_type, data, entry.actor, now, prev, digest)


def _append_audit(
    conn: sqlite3.Connection, entry: AuditEntry, now: str, proposal_id: int | None = None
) -> None:
    """Append one event (for ``proposal_id`` if given, else the entry's own)."""
    row = _audit_row(entry, now, _audit_head(conn), proposal_id)
    if row[1] is None:
        conn.execute(_INSERT_AUDIT_NO_WORKFLOW, row[:1] + row[2:])
    else:
        conn.execute(_INSERT_AUDIT, row)
    if isinstance(conn, _Connection):
        conn.audit_head = row[-1]


def _append_audits(conn: sqlite3.Connection, entries: Sequence[AuditEntry], now: str) -> None:
    """Append events in this order, each chained to the one before, in one statement."""
    rows = []
    prev = _audit_head(conn)
    for entry in entries:
        rows.append(_audit_row(entry, now, prev))
        prev = rows[-1][-1]
    if all(row[1] is None for row in rows):
        conn.executemany(_INSERT_AUDIT_NO_WORKFLOW, [row[:1] + row[2:] for row in rows])
    else:
        conn.executemany(_INSERT_AUDIT, rows)
    if isinstance(conn, _Connection):
        conn.audit_head = prev


M = TypeVar("M", bound="BaseModel")
_FIELDS: dict[type, frozenset[str]] = {}


_SHAPES: set[tuple[type, tuple[str, ...]]] = set()


def _trusted(cls: type[M], values: dict[str, Any], shape: tuple[str, ...] | None = None) -> M:
    """``cls.model_construct(**values)`` for values that name every field (rows we wrote,
    typed here; the dict becomes the model's own): the same object, without
    model_construct's per-field loop, which costs more than reading the row. Anything else
    goes through model_construct itself.

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
    set_dict, set_fields_set, set_extra, set_private = _MODEL_SLOTS or _model_slots()
    m = cls.__new__(cls)
    set_dict(m, values)
    set_fields_set(m, fields_set)
    set_extra(m, None)
    set_private(m, None)
    return m


_MODEL_SLOTS: tuple[Callable[[Any, Any], None], ...] = ()


def _model_slots() -> tuple[Callable[[Any, Any], None], ...]:
    """The setters of the four slots every pydantic model has, as ``object.__setattr__``
    reaches them (found here once, not looked up on the class for every model built)."""
    global _MODEL_SLOTS
    from pydantic import BaseModel

    _MODEL_SLOTS = tuple(
        BaseModel.__dict__[name].__set__
        for name in (
            "__dict__",
            "__pydantic_fields_set__",
            "__pydantic_extra__",
            "__pydantic_private__",
        )
    )
    return _MODEL_SLOTS


def _with_id(p: ActionProposal, new_id: int) -> ActionProposal:
    """A copy of a stored proposal with its new id: ``model_copy(update={"id": new_id})``
    without its per-field work (a proposal the caller built was validated when built)."""
    values = p.__dict__.copy()
    values["id"] = new_id
    return _assembled(type(p), values, p.__pydantic_fields_set__ | {"id"})


_ACTION_TYPES = {t.value: t for t in ActionType}
_STATUSES = {s.value: s for s in ActionStatus}


def _params(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text and text != "{}" else {}


_PROPOSAL_GETTERS: dict[tuple[str, ...], Callable[[Any], tuple[Any, ...]]] = {}


def _proposal_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """One C call that picks the model's columns out of a row with these column names (a
    ``sqlite3.Row`` looked up by name compares every column name, per field, per row)."""
    getter = _PROPOSAL_GETTERS.get(names)
    if getter is None:
        getter = _PROPOSAL_GETTERS[names] = operator.itemgetter(
            *(names.index(column) for column in _PROPOSAL_COLUMNS)
        )
    return getter


def _row_to_proposal(row: sqlite3.Row, views: bool = False) -> ActionProposal:
    """Rows are trusted (written by us, typed here), so the model is built without another
    validation pass: this runs for every claimed action and every row the dashboard shows.
    With ``views``, a ``ProposalView`` of the same values instead (no pydantic)."""
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
    return _trusted(_models().ActionProposal, values, _PROPOSAL_COLUMNS)


def _row_to_record(row: sqlite3.Row) -> ActionRecord:
    success = row["success"]
    return _models().ActionRecord(
        id=row["id"],
        proposal_id=row["proposal_id"],
        attempt=row["attempt"],
        started_at=from_db(row["started_at"]),
        completed_at=from_db(row["completed_at"]),
        success=None if success is None else bool(success),
        error_message=row["error_message"],
        result_data=json.loads(row["result_data"]) if row["result_data"] else None,
        host=row["host"],
        pid=row["pid"],
        pgid=row["pgid"],
        process_start=row["process_start"],
    )


_WORKFLOW_STATUSES = {s.value: s for s in WorkflowStatus}


def _row_to_workflow(row: sqlite3.Row, views: bool = False) -> WorkflowProposal:
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
    return _trusted(_models().WorkflowProposal, values)


def _row_to_ticket(row: sqlite3.Row) -> Ticket:
    return _models().Ticket(
        id=row["id"],
        title=row["title"],
        summary=row["summary"],
        severity=row["severity"],
        status=row["status"],
        created_at=from_db(row["created_at"]),
    )


def _row_to_audit(row: sqlite3.Row, views: bool = False) -> AuditEvent:
    values = dict(
        id=row["id"],
        proposal_id=row["proposal_id"],
        workflow_id=row["workflow_id"],
        event_type=row["event_type"],
        event_data=json.loads(row["event_data"]),
        actor=row["actor"],
        timestamp=from_db(row["timestamp"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )
    if views:
        return AuditEventView.of(values)  # type: ignore[no-any-return]
    return _trusted(_models().AuditEvent, values)


def _fetch_proposal(conn: sqlite3.Connection, proposal_id: int) -> ActionProposal:
    row = conn.execute("SELECT * FROM action_proposals WHERE id = ?", (proposal_id,)).fetchone()
    if row is None:
        raise ActionNotFoundError(f"no action with id {proposal_id}")
    return _row_to_proposal(row)


def _fetch_workflow(conn: sqlite3.Connection, workflow_id: int) -> WorkflowProposal:
    row = conn.execute("SELECT * FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
    if row is None:
        raise WorkflowNotFoundError(f"no workflow with id {workflow_id}")
    return _row_to_workflow(row)


# The columns a proposal row is inserted with, in the order ``_insert_proposal`` gives them;
# a "?" marks one that may be NULL (the others are NOT NULL and always named).
_PROPOSAL_INSERT_SPEC = (
    "ticket_id?",
    "action_name",
    "action_type",
    "parameters",
    "reason",
    "status",
    "proposed_at",
    "proposed_by",
    "validated_at?",
    "cancelled_at?",
    "cancel_reason?",
    "requires_approval",
    "approved_at?",
    "approved_by?",
    "rejected_at?",
    "rejected_by?",
    "rejection_reason?",
    "expires_at?",
    "workflow_id?",
    "execution_order",
    "depends_on_proposal_id?",
    "delay_seconds",
    "scheduled_at?",
    "retry_count",
    "max_retries",
    "next_retry_at?",
    "last_error?",
    "created_at",
    "updated_at",
    "proposed_identity",
)
_PROPOSAL_INSERT_COLUMNS = tuple(spec.rstrip("?") for spec in _PROPOSAL_INSERT_SPEC)
_PROPOSAL_NOT_NULL = tuple(not spec.endswith("?") for spec in _PROPOSAL_INSERT_SPEC)
_NONES = (None,) * len(_PROPOSAL_INSERT_COLUMNS)
_PROPOSAL_INSERTS: dict[tuple[bool, ...], str] = {}


def _proposal_insert(values: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """The INSERT of a proposal row, naming only the columns it gives a value (the others
    default to NULL), with the values to bind.

    Python 3.11's sqlite3 binds each ``None`` through its adapter lookup, which formats an
    AttributeError and throws it away: about 0.27 µs a value, against 0.03 µs for an int. A
    plain proposal has 15 columns that are NULL. A NOT NULL column is always named, so a row
    stores exactly what binding every value would have stored (or fails the same way)."""
    present = tuple(map(operator.or_, map(operator.is_not, values, _NONES), _PROPOSAL_NOT_NULL))
    sql = _PROPOSAL_INSERTS.get(present)
    if sql is None:
        names = tuple(compress(_PROPOSAL_INSERT_COLUMNS, present))
        sql = _PROPOSAL_INSERTS[present] = (
            f"INSERT INTO action_proposals ({', '.join(names)}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
    return sql, tuple(compress(values, present))


def _insert_proposal(conn: sqlite3.Connection, p: ActionProposal, identity: str) -> int:
    # The model's values read from its __dict__: a pydantic model's own attribute lookup
    # goes through its __getattr__ hook, about twice the time, for each of 29 columns.
    v = p.__dict__
    proposed_at = to_db(v["proposed_at"])
    cur = conn.execute(
        *_proposal_insert(
            (
                v["ticket_id"],
                v["action_name"],
                v["action_type"].value,
                _json(v["parameters"]),
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
        )
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def _cancel_rows(
    conn: sqlite3.Connection,
    where: str,
    params: Sequence[Any],
    now: str,
    by: str,
    reason: str,
    identity: str | None = None,
) -> list[int]:
    """Cancel every pending or retry-waiting action matching ``where``; returns their ids.
    ``identity``: the OS account of a person who cancelled (None: the system did)."""
    rows = conn.execute(
        f"""
        UPDATE action_proposals SET status = 'cancelled', cancelled_at = ?, cancelled_by = ?,
            cancel_reason = ?, next_retry_at = NULL, finished_at = ?, cancelled_identity = ?
        WHERE ({where}) AND ({_CANCELLABLE})
        RETURNING id
        """,
        (now, by, reason, now, identity, *params),
    ).fetchall()
    return sorted(r[0] for r in rows)


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


_NOT_NOW = object()
"""A transaction that could not run without waiting, and so did not run."""


def _counting_changes(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> tuple[T, bool]:
    """``fn(conn, *args)`` and whether it changed anything."""
    before = conn.total_changes
    result = fn(conn, *args)
    return result, conn.total_changes != before


def _finish_txn(conn: sqlite3.Connection, fn: Callable[..., T], args: Sequence[Any]) -> T:
    """Run ``fn`` inside the transaction just begun; commit, or roll back if it raises."""
    _forget_audit_head(conn)
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        _forget_audit_head(conn)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _forget_audit_head(conn: sqlite3.Connection) -> None:
    """The cached head is only good inside the transaction (or savepoint) that wrote it."""
    if isinstance(conn, _Connection):
        conn.audit_head = None


class ActionDB:
    """Async access to the action tables, over one aiosqlite connection."""

    def __init__(
        self,
        db_path: Path | str,
        *,
        clock: Clock | None = None,
        busy_timeout: float | None = None,
        synchronous: str | None = None,
    ) -> None:
        self.db_path = Path(db_path).expanduser()
        # Whether the whole file passed PRAGMA quick_check: asked once, before the first
        # write of this connection (see health.py).
        self._checked = False
        self.clock = clock or SYSTEM_CLOCK
        self._busy_timeout = (
            busy_timeout
            if busy_timeout is not None
            else env_number("OPERATOR_BUSY_TIMEOUT", 5.0, low=0, high=3600, unit=" (seconds)")
        )
        self._synchronous = (
            synchronous or os.environ.get("OPERATOR_SQLITE_SYNCHRONOUS") or "NORMAL"
        ).upper()
        self._conn: aiosqlite.Connection | None = None
        self._in_use: int | None = None  # see inuse.py
        # Calls handed to the worker thread, and calls it has finished; each counter has one
        # writer (the event loop's thread, the worker thread), so neither loses a count.
        self._worker_sent = 0
        self._worker_done = 0
        self._notifier = Notifier(self.db_path)
        self._checkpointer = Checkpointer(self.db_path)
        self.kill_file = KillFile(self.db_path)
        self.approval_gate: ApprovalGate | None = None
        """Whether an action (by name) requires approval by the definitions of the subject
        this process runs: its executor sets it; every claim checks it."""

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> ActionDB:
        if self._conn is not None:
            return self
        if self._synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise DatabaseError(
                f"OPERATOR_SQLITE_SYNCHRONOUS must be NORMAL or FULL, not {self._synchronous!r}"
            )
        path = self.db_path
        if path.is_dir():
            raise DatabaseError(f"database {path} is a directory, not a file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        except OSError as exc:
            raise DatabaseError(f"cannot create database {path}: {exc.strerror}") from exc
        self._in_use = inuse.hold_shared(path)
        try:
            # check_same_thread=False: short transactions also run on the event loop's
            # thread, never at the same time as the worker thread (see _call).
            conn = await aiosqlite.connect(
                str(path),
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
                factory=_Connection,
            )
        except sqlite3.Error as exc:  # e.g. the path is a directory
            self._release_in_use()
            raise self._translate(exc) from exc
        try:
            await conn._execute(self._setup, conn._conn)
        except sqlite3.DatabaseError as exc:
            await conn.close()
            self._release_in_use()
            raise self._translate(exc) from exc
        except BaseException:
            await conn.close()
            self._release_in_use()
            raise
        self._conn = conn
        return self

    def _setup(self, raw: sqlite3.Connection) -> None:
        raw.row_factory = sqlite3.Row
        if isinstance(raw, _Connection):
            raw.kill_file = self.kill_file
        raw.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        # Nothing below may write to a file that is not a healthy Operator database.
        health.check_is_operator(raw, self.db_path)
        if raw.execute("PRAGMA user_version").fetchone()[0] < LATEST_VERSION:
            health.quick_check(raw, self.db_path)  # before a migration writes to it
            self._checked = True
        # Before anything is written (a no-op on an existing database): see PAGE_SIZE.
        raw.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        mode = raw.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.DatabaseError(f"cannot switch to WAL journal (got {mode})")
        raw.execute(f"PRAGMA synchronous = {self._synchronous}")
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_NET_PAGES}")  # see checkpoint.py
        if pages := os.environ.get("OPERATOR_TEST_MAX_PAGE_COUNT"):
            # For tests only: this connection may not grow the file past that many pages, so
            # SQLite reports a full disk (SQLITE_FULL) without a full disk.
            raw.execute(f"PRAGMA max_page_count = {int(pages)}")
        migrate(raw, str(self.db_path))
        raw.execute("PRAGMA busy_timeout = 0")

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
        self._release_in_use()
        self._notifier.close()
        self._checkpointer.close()

    def _release_in_use(self) -> None:
        fd, self._in_use = self._in_use, None
        inuse.release(fd)

    async def __aenter__(self) -> ActionDB:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    # ------------------------------------------------------------------ plumbing

    def _translate(self, exc: sqlite3.Error) -> DatabaseError:
        text = str(exc)
        if _is_busy(exc):
            return DatabaseError(
                f"database {self.db_path} is locked by another process "
                f"(waited {self._busy_timeout:g}s); try again"
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return DatabaseError(
                f"database {self.db_path} is corrupt or not an Operator database: {text}"
            )
        if "readonly" in text:
            return DatabaseError(f"database {self.db_path} is read-only: {text}")
        return DatabaseError(f"database error on {self.db_path}: {text}")

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the connection's worker thread, where SQLite may wait
        out another process's lock for up to the busy timeout without blocking the loop."""
        if self._conn is None:
            await self.open()
        assert self._conn is not None
        raw = self._conn._conn
        busy_ms = int(self._busy_timeout * 1000)

        def waiting(conn: sqlite3.Connection, *a: Any) -> T:
            try:
                conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
                try:
                    return fn(conn, *a)
                finally:
                    conn.execute("PRAGMA busy_timeout = 0")
            finally:
                # Counted here, on the worker thread, when the work is really over: a caller
                # cancelled while waiting does not stop the worker from running it.
                self._worker_done += 1

        self._worker_sent += 1
        try:
            return await self._conn._execute(waiting, raw, *args)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    @property
    def _worker_idle(self) -> bool:
        """The worker thread has finished everything handed to it: the connection is free
        to use on this thread."""
        return self._worker_sent == self._worker_done

    async def _txn(self, begin: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction opened with ``begin``: right here if
        that needs no waiting (``_txn_now``), else on the worker thread, which may wait for
        the lock."""
        if self._conn is None:
            await self.open()
        result = self._txn_now(begin, fn, args)
        if result is not _NOT_NOW:
            return result  # type: ignore[return-value]

        def on_worker(conn: sqlite3.Connection, *a: Any) -> T:
            conn.execute(begin)
            return _finish_txn(conn, fn, a)

        return await self._call(on_worker, *args)

    def _txn_now(self, begin: str, fn: Callable[..., T], args: Sequence[Any]) -> T | object:
        """The fast path: the transaction runs on the event loop's own thread, with no thread
        hop (which costs more than a small transaction itself). Taken only when the worker
        thread has nothing in hand (so the connection is never used from two threads at once)
        and the lock is free at once (the connection's busy timeout is 0 outside the worker).
        Otherwise nothing has happened and the result is ``_NOT_NOW``."""
        if self._conn is None or not self._worker_idle:
            return _NOT_NOW
        raw = self._conn._conn
        started = False
        try:
            raw.execute(begin)
            started = True
            return _finish_txn(raw, fn, args)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.OperationalError as exc:
            # Busy: at BEGIN (nothing ran) or, for a read, anywhere (reads change
            # nothing, so running them again is safe). Then wait on the worker.
            if not _is_busy(exc) or (started and begin != "BEGIN"):
                raise self._translate(exc) from exc
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        return _NOT_NOW

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one read snapshot."""
        return await self._txn("BEGIN", fn, *args)

    async def check_health(self) -> None:
        """The whole-file check a connection's first write makes (``health.quick_check``),
        now: a runner asks it before its loop, so that a damaged file stops it with one line
        instead of an outage it would wait out forever. CorruptDatabaseError if damaged."""
        if not self._checked:
            await self._call(health.quick_check, self.db_path)
            self._checked = True

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` as one write transaction (for the engine's own modules)."""
        return await self._write(fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any, check: bool = True) -> T:
        """Run ``fn(conn, *args)`` as one write transaction, then wake other processes.
        The first write of a connection checks the whole file first (``check=False``: the
        kill switch, which must work on a damaged file as long as it can)."""
        if check:
            await self.check_health()
        result, changed = await self._txn("BEGIN IMMEDIATE", _counting_changes, fn, *args)
        if changed:
            self._committed()
        return result

    def _write_now(self, fn: Callable[..., T], *args: Any) -> T | object:
        """``_write`` if it can run right here without waiting, else ``_NOT_NOW``."""
        if not self._checked:
            return _NOT_NOW
        done = self._txn_now("BEGIN IMMEDIATE", _counting_changes, (fn, *args))
        if done is _NOT_NOW:
            return _NOT_NOW
        result, changed = done  # type: ignore[misc]
        if changed:
            self._committed()
        return result

    def _committed(self) -> None:
        self._notifier.notify()
        self._checkpointer.committed()

    def poke_listeners(self) -> None:
        """Wake every runner and dashboard on this database now (the kill file was written)."""
        self._notifier.notify()

    def set_listener_name(self, name: str | None) -> None:
        """Skip poking our own listener (a process does not wake itself)."""
        self._notifier.own_name = name

    def _now(self) -> str:
        return self.clock.now_text()

    # ------------------------------------------------------------------ change detection

    async def data_version(self) -> int:
        """Changes whenever another connection commits (cheap: no table read)."""

        def fn(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

        # Takes no lock, so it never waits: right here when the worker thread is idle (the
        # runner and the dashboard poll it while idle; a thread hop would cost more).
        if self._conn is not None and self._worker_idle:
            try:
                return fn(self._conn._conn)
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
        return await self._call(fn)

    # ------------------------------------------------------------------ tickets

    async def create_ticket(self, ticket: Ticket, actor: str = "agent") -> Ticket:
        now = self._now()

        def fn(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO tickets (title, summary, severity, status, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    ticket.title,
                    ticket.summary,
                    ticket.severity,
                    ticket.status,
                    to_db(ticket.created_at),
                ),
            )
            assert cur.lastrowid is not None
            _append_audit(
                conn,
                AuditEntry(
                    "ticket_opened", {"ticket_id": cur.lastrowid, "title": ticket.title}, actor
                ),
                now,
            )
            return cur.lastrowid

        ticket_id = await self._write(fn)
        return ticket.model_copy(update={"id": ticket_id})

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        def fn(conn: sqlite3.Connection) -> Ticket | None:
            row = conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
            return _row_to_ticket(row) if row else None

        return await self._call(fn)

    # ------------------------------------------------------------------ proposals

    async def create_proposal(
        self,
        proposal: ActionProposal,
        audit: Iterable[AuditEntry] = (),
        *,
        require_execute: bool = False,
        identity: str | None = None,
    ) -> ActionProposal:
        """Insert a proposal (and its audit events) and return it with its id.
        ``require_execute`` refuses it, in the same transaction, while the mode is OBSERVE."""
        entries = list(audit)
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> tuple[ActionProposal, int]:
            p, es = proposal, entries
            if require_execute and _require_execute(conn):
                p, es = with_approval(p, es)
            new_id = _insert_proposal(conn, p, who)
            for e in es:
                _append_audit(conn, e, now, new_id)
            return p, new_id

        stored, new_id = await self._write(fn)
        return _with_id(stored, new_id)

    async def create_proposals(
        self,
        proposals: Sequence[ActionProposal],
        audits: Sequence[AuditEntry],
        *,
        require_execute: bool = False,
        identity: str | None = None,
    ) -> list[ActionProposal]:
        """Insert many proposals, each with its audit event, in one transaction (all or
        none)."""
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            held = require_execute and _require_execute(conn)
            stored = []
            for proposal, e in zip(proposals, audits, strict=True):
                if held:
                    proposal, (e,) = with_approval(proposal, [e])
                stored.append(_with_id(proposal, _insert_proposal(conn, proposal, who)))
                _append_audit(conn, e, now, stored[-1].id)
            return stored

        return await self._write(fn)

    async def get_proposal(self, proposal_id: int) -> ActionProposal | None:
        def fn(conn: sqlite3.Connection) -> ActionProposal | None:
            row = conn.execute(
                "SELECT * FROM action_proposals WHERE id = ?", (proposal_id,)
            ).fetchone()
            return _row_to_proposal(row) if row else None

        return await self._call(fn)

    async def list_proposals(
        self,
        status: ActionStatus | None = None,
        limit: int | None = 1000,
        offset: int = 0,
        ticket_id: int | None = None,
    ) -> list[ActionProposal]:
        """Newest first, bounded by ``limit`` (None for everything)."""
        clauses, params = [], []
        if status is not None:
            # The status as SQL text (one of the enum's values), so the planner can match it
            # to the partial index that holds it.
            value = ActionStatus(status).value
            if value == "validated":
                clauses.append(f"id IN ({_VALIDATED_IDS})")
            else:
                clauses.append(f"status = '{value}' AND {_IN_STATE_INDEX}")
        if ticket_id is not None:
            clauses.append("ticket_id = ?")
            params.append(ticket_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM action_proposals {where} ORDER BY id DESC LIMIT ? OFFSET ?"
        params += [-1 if limit is None else limit, offset]

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            return [_row_to_proposal(r) for r in conn.execute(sql, params).fetchall()]

        return await self._call(fn)

    async def update_proposal_status(
        self,
        proposal_id: int,
        status: ActionStatus,
        expected: Sequence[ActionStatus] | None = None,
    ) -> None:
        """Set the status (seed API); ``expected`` guards the transition."""
        status = ActionStatus(status)
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            current = _fetch_proposal(conn, proposal_id)
            if expected is not None and current.status not in expected:
                raise InvalidTransitionError(
                    f"action {proposal_id} is {current.status.value}, cannot become {status.value}"
                )
            extra = ""
            if status == ActionStatus.VALIDATED:
                extra = ", validated_at = :now"
            elif status == ActionStatus.CANCELLED:
                extra = ", cancelled_at = :now, finished_at = :now, next_retry_at = NULL"
            elif status in (ActionStatus.COMPLETED, ActionStatus.FAILED):
                extra = ", finished_at = :now"
            conn.execute(
                f"UPDATE action_proposals SET status = :status{extra} WHERE id = :id",
                {"status": status.value, "now": now, "id": proposal_id},
            )

        await self._write(fn)

    async def validate_proposal(self, proposal_id: int, actor: str = "system") -> None:
        """proposed -> validated, audited."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE action_proposals SET status = 'validated', validated_at = ? "
                "WHERE id = ? AND status = 'proposed'",
                (now, proposal_id),
            )
            if cur.rowcount != 1:
                p = _fetch_proposal(conn, proposal_id)
                raise InvalidTransitionError(
                    f"action {proposal_id} is {p.status.value}, not proposed"
                )
            _append_audit(conn, AuditEntry("validated", {}, actor, proposal_id), now)

        await self._write(fn)

    async def cancel_all_pending(
        self, cancelled_by: str = "system", reason: str = "cancelled"
    ) -> int:
        """Cancel every proposed, validated and retry-waiting action; returns the count."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> int:
            ids = _cancel_rows(conn, _ALL_CANCELLABLE, (), now, cancelled_by, reason)
            for pid in ids:
                _append_audit(
                    conn, AuditEntry("cancelled", {"reason": reason}, cancelled_by, pid), now
                )
            return len(ids)

        return await self._write(fn)

    # ------------------------------------------------------------------ records

    async def create_record(self, record: ActionRecord) -> ActionRecord:
        def fn(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO action_records (proposal_id, attempt, started_at, completed_at,"
                " success, error_message, result_data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.proposal_id,
                    record.attempt,
                    to_db(record.started_at),
                    to_db(record.completed_at),
                    None if record.success is None else int(record.success),
                    record.error_message,
                    None if record.result_data is None else _json(record.result_data),
                ),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        new_id = await self._write(fn)
        return record.model_copy(update={"id": new_id})

    async def update_record(
        self,
        record_id: int,
        success: bool,
        error_message: str | None = None,
        result_data: dict[str, Any] | None = None,
    ) -> None:
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE action_records SET completed_at = ?, success = ?, error_message = ?,"
                " result_data = ? WHERE id = ?",
                (
                    now,
                    int(success),
                    error_message,
                    None if result_data is None else _json(result_data),
                    record_id,
                ),
            )

        await self._write(fn)

    async def set_attempt_process(
        self, record_id: int, host: str, pid: int, pgid: int, start: str | None
    ) -> None:
        """Where an open attempt's command runs (once per command attempt, when it starts)."""

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE action_records SET host = ?, pid = ?, pgid = ?, process_start = ? "
                "WHERE id = ? AND completed_at IS NULL",
                (host, pid, pgid, start, record_id),
            )

        await self._write(fn)

    async def list_records(self, proposal_id: int, limit: int = 100) -> list[ActionRecord]:
        def fn(conn: sqlite3.Connection) -> list[ActionRecord]:
            rows = conn.execute(
                "SELECT * FROM action_records WHERE proposal_id = ? ORDER BY id LIMIT ?",
                (proposal_id, limit),
            ).fetchall()
            return [_row_to_record(r) for r in rows]

        return await self._call(fn)

    # ------------------------------------------------------------------ approval

    async def approve_proposal(
        self,
        proposal_id: int,
        approved_by: str = "user",
        *,
        identity: str | None = None,
        audit: bool = True,
    ) -> ActionProposal:
        """Approve a pending action. Workflow steps are approved through their workflow.
        ``identity`` (default: this process's OS account) is who the four-eyes rule of the
        database's policy compares with the proposer; ``approved_by`` is a label beside it.
        An action past its expiry is expired instead (ApprovalError)."""
        now_dt = self.clock.now()
        now = to_db(now_dt)
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> ActionProposal | None:
            p = _fetch_proposal(conn, proposal_id)
            if p.workflow_id is not None:
                raise ApprovalError(
                    f"action {proposal_id} is step {p.execution_order + 1} of workflow "
                    f"{p.workflow_id}; approve the workflow instead"
                )
            _check_approvable(p.status, p.approved_at, p.rejected_at, f"action {proposal_id}")
            if lapsed(p.expires_at, now_dt):
                return expire_at_approval(conn, proposal_id, now or "")
            check_four_eyes(conn, False, proposal_id, who, f"action {proposal_id}")
            cur = conn.execute(
                "UPDATE action_proposals SET approved_at = ?, approved_by = ?, "
                "approved_identity = ? WHERE id = ? AND status IN ('proposed', 'validated') "
                "AND approved_at IS NULL",
                (now, approved_by, who, proposal_id),
            )
            if cur.rowcount != 1:
                raise InvalidTransitionError(f"action {proposal_id} changed meanwhile")
            if audit:
                _append_audit(
                    conn, AuditEntry("approved", {}, actor_text(approved_by, who), proposal_id), now
                )
            return _fetch_proposal(conn, proposal_id)

        approved = await self._write(fn)
        if approved is None:
            raise ApprovalError(
                f"action {proposal_id} expired before it was approved; it is "
                "cancelled (propose it again if it is still needed)"
            )
        return approved

    async def reject_proposal(
        self,
        proposal_id: int,
        rejected_by: str = "user",
        reason: str = "",
        *,
        audit: bool = True,
        identity: str | None = None,
    ) -> ActionProposal:
        """Reject a pending action: it is cancelled and never runs."""
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> ActionProposal:
            p = _fetch_proposal(conn, proposal_id)
            if p.workflow_id is not None:
                raise ApprovalError(
                    f"action {proposal_id} belongs to workflow {p.workflow_id}; reject the "
                    "workflow instead"
                )
            _check_approvable(p.status, p.approved_at, p.rejected_at, f"action {proposal_id}")
            cur = conn.execute(
                "UPDATE action_proposals SET rejected_at = ?, rejected_by = ?, "
                "rejection_reason = ?, status = 'cancelled', cancelled_at = ?, cancelled_by = ?,"
                " cancel_reason = 'rejected', finished_at = ?, rejected_identity = ?, "
                "cancelled_identity = ? "
                "WHERE id = ? AND status IN ('proposed', 'validated') AND approved_at IS NULL",
                (now, rejected_by, reason, now, rejected_by, now, who, who, proposal_id),
            )
            if cur.rowcount != 1:
                raise InvalidTransitionError(f"action {proposal_id} changed meanwhile")
            if audit:
                _append_audit(
                    conn,
                    AuditEntry(
                        "rejected", {"reason": reason}, actor_text(rejected_by, who), proposal_id
                    ),
                    now,
                )
            return _fetch_proposal(conn, proposal_id)

        return await self._write(fn)

    # ------------------------------------------------------------------ cancellation

    async def cancel_proposal(
        self,
        proposal_id: int,
        cancelled_by: str,
        reason: str = "cancelled",
        *,
        identity: str | None = None,
    ) -> ActionProposal:
        """Cancel one action. A running one is asked to stop (its runner records it).

        Cancelling a workflow step cancels the whole workflow.
        """
        now = self._now()
        who = identity or current_identity().text
        shown = actor_text(cancelled_by, who)

        def fn(conn: sqlite3.Connection) -> ActionProposal:
            p = _fetch_proposal(conn, proposal_id)
            if p.workflow_id is not None:
                _cancel_workflow_tx(conn, p.workflow_id, cancelled_by, reason, now, identity=who)
                return _fetch_proposal(conn, proposal_id)
            if p.status == ActionStatus.EXECUTING:
                conn.execute(
                    "UPDATE action_proposals SET cancel_requested = 1, cancel_reason = ?,"
                    " cancelled_by = ?, cancelled_identity = ? WHERE id = ? AND "
                    "status = 'executing'",
                    (reason, cancelled_by, who, proposal_id),
                )
                _append_audit(
                    conn,
                    AuditEntry("cancel_requested", {"reason": reason}, shown, proposal_id),
                    now,
                )
                return _fetch_proposal(conn, proposal_id)
            ids = _cancel_rows(conn, "id = ?", (proposal_id,), now, cancelled_by, reason, who)
            if not ids:
                raise InvalidTransitionError(
                    f"action {proposal_id} is {_describe_status(p)}; only a pending, "
                    "scheduled, retry-waiting or running action can be cancelled"
                )
            _append_audit(
                conn, AuditEntry("cancelled", {"reason": reason}, shown, proposal_id), now
            )
            return _fetch_proposal(conn, proposal_id)

        return await self._write(fn)

    async def expire_proposals(self) -> list[int]:
        """Cancel unapproved actions whose ``expires_at`` has passed (reason "expired")."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> list[int]:
            ids = _cancel_rows(
                conn,
                "expires_at IS NOT NULL AND expires_at <= ? AND approved_at IS NULL "
                "AND requires_approval <> 0",
                (now,),
                now,
                "system",
                "expired",
            )
            for pid in ids:
                _append_audit(conn, AuditEntry("expired", {}, "system", pid), now)
            return ids

        if not await self._call(_has_expired, now):
            return []
        return await self._write(fn)

    # ------------------------------------------------------------------ workflows

    async def create_workflow(
        self,
        name: str,
        description: str,
        actions: list[ActionProposal],
        ticket_id: int | None = None,
        *,
        requires_approval: bool | None = None,
        proposed_by: str = "agent",
        audit: Iterable[AuditEntry] = (),
        require_execute: bool = False,
        identity: str | None = None,
    ) -> int:
        """Create a workflow and all its steps in one transaction; each step depends on the
        one before it. Returns the workflow id."""
        if not actions:
            raise ValueError("a workflow needs at least one action")
        needs = (
            any(a.requires_approval for a in actions)
            if requires_approval is None
            else requires_approval
        )
        entries = list(audit)
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> int:
            nonlocal needs, entries
            if require_execute and _require_execute(conn) and not needs:
                needs, entries = True, held_entries(entries)  # the database's approval mode
            cur = conn.execute(
                "INSERT INTO workflows (name, description, ticket_id, status, created_at,"
                " updated_at, requires_approval, proposed_by, proposed_identity) VALUES "
                "(?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                (name, description, ticket_id, now, now, int(needs), proposed_by, who),
            )
            workflow_id = cur.lastrowid
            assert workflow_id is not None
            for e in entries:
                _append_audit(
                    conn,
                    AuditEntry(
                        e.event_type,
                        {**e.event_data, "workflow_id": workflow_id},
                        e.actor,
                        e.proposal_id,
                        workflow_id,
                    ),
                    now,
                )
            previous: int | None = None
            for i, action in enumerate(actions):
                step = action.model_copy(
                    update={
                        "workflow_id": workflow_id,
                        "execution_order": i,
                        "depends_on_proposal_id": previous,
                        "ticket_id": action.ticket_id if action.ticket_id else ticket_id,
                        "requires_approval": needs,
                    }
                )
                previous = _insert_proposal(conn, step, who)
                _append_audit(
                    conn,
                    AuditEntry(
                        "proposed",
                        {
                            "action": step.action_name,
                            "parameters": step.parameters,
                            "reason": step.reason,
                            "step": i + 1,
                            "validated": True,
                            "requires_approval": needs,
                        },
                        actor_text(proposed_by, who),
                        previous,
                        workflow_id,
                    ),
                    now,
                )
            return workflow_id

        return await self._write(fn)

    async def get_workflow(self, workflow_id: int) -> WorkflowProposal | None:
        def fn(conn: sqlite3.Connection) -> WorkflowProposal | None:
            row = conn.execute("SELECT * FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
            return _row_to_workflow(row) if row else None

        return await self._call(fn)

    async def list_workflows(
        self, status: WorkflowStatus | None = None, limit: int = 100, open_only: bool = False
    ) -> list[WorkflowProposal]:
        return await self.snapshot(lambda snap: snap.list_workflows(status, limit, open_only))

    async def list_workflow_actions(self, workflow_id: int) -> list[ActionProposal]:
        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            rows = conn.execute(
                "SELECT * FROM action_proposals WHERE workflow_id = ? ORDER BY execution_order",
                (workflow_id,),
            ).fetchall()
            return [_row_to_proposal(r) for r in rows]

        return await self._call(fn)

    async def update_workflow_status(self, workflow_id: int, status: WorkflowStatus) -> None:
        status = WorkflowStatus(status)
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE workflows SET status = ?, finished_at = CASE WHEN ? IN "
                "('completed', 'failed', 'cancelled') THEN ? ELSE finished_at END WHERE id = ?",
                (status.value, status.value, now, workflow_id),
            )
            if cur.rowcount != 1:
                raise WorkflowNotFoundError(f"no workflow with id {workflow_id}")

        await self._write(fn)

    async def approve_workflow(
        self, workflow_id: int, approved_by: str = "user", *, identity: str | None = None
    ) -> WorkflowProposal:
        """Approve a workflow and with it every one of its steps (approve once, run all);
        as ``approve_proposal`` for the four-eyes rule and expiry."""
        now_dt = self.clock.now()
        now = to_db(now_dt)
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> WorkflowProposal | None:
            wf = _fetch_workflow(conn, workflow_id)
            if wf.status != WorkflowStatus.PENDING or wf.approved_at or wf.rejected_at:
                raise InvalidTransitionError(
                    f"workflow {workflow_id} is {_describe_workflow(wf)}; only a pending "
                    "workflow awaiting approval can be approved"
                )
            if lapsed(workflow_expiry(conn, workflow_id), now_dt):
                _cancel_workflow_tx(conn, workflow_id, "system", "expired", now or "")
                return None
            check_four_eyes(conn, True, workflow_id, who, f"workflow {workflow_id}")
            conn.execute(
                "UPDATE workflows SET approved_at = ?, approved_by = ?, approved_identity = ? "
                "WHERE id = ?",
                (now, approved_by, who, workflow_id),
            )
            conn.execute(
                "UPDATE action_proposals SET approved_at = ?, approved_by = ?, "
                "approved_identity = ? WHERE workflow_id = ? AND status IN ('proposed', "
                "'validated') AND approved_at IS NULL",
                (now, approved_by, who, workflow_id),
            )
            _append_audit(
                conn,
                AuditEntry(
                    "workflow_approved",
                    {"workflow_id": workflow_id},
                    actor_text(approved_by, who),
                    None,
                    workflow_id,
                ),
                now,
            )
            return _fetch_workflow(conn, workflow_id)

        approved = await self._write(fn)
        if approved is None:
            raise ApprovalError(
                f"workflow {workflow_id} expired before it was approved; it "
                "is cancelled (propose it again if it is still needed)"
            )
        return approved

    async def reject_workflow(
        self,
        workflow_id: int,
        rejected_by: str = "user",
        reason: str = "",
        *,
        identity: str | None = None,
    ) -> WorkflowProposal:
        """Reject a pending workflow: it and all its steps are cancelled."""
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> WorkflowProposal:
            wf = _fetch_workflow(conn, workflow_id)
            if wf.status != WorkflowStatus.PENDING or wf.approved_at or wf.rejected_at:
                raise InvalidTransitionError(
                    f"workflow {workflow_id} is {_describe_workflow(wf)}; only a pending "
                    "workflow awaiting approval can be rejected"
                )
            conn.execute(
                "UPDATE workflows SET rejected_at = ?, rejected_by = ?, rejection_reason = ?,"
                " rejected_identity = ? WHERE id = ?",
                (now, rejected_by, reason, who, workflow_id),
            )
            conn.execute(
                "UPDATE action_proposals SET rejected_at = ?, rejected_by = ?, "
                "rejection_reason = ?, rejected_identity = ? WHERE workflow_id = ? AND "
                "status IN ('proposed', 'validated')",
                (now, rejected_by, reason, who, workflow_id),
            )
            _append_audit(
                conn,
                AuditEntry(
                    "workflow_rejected",
                    {"workflow_id": workflow_id, "reason": reason},
                    actor_text(rejected_by, who),
                    None,
                    workflow_id,
                ),
                now,
            )
            _cancel_workflow_tx(conn, workflow_id, rejected_by, "rejected", now, identity=who)
            return _fetch_workflow(conn, workflow_id)

        return await self._write(fn)

    async def cancel_workflow(
        self,
        workflow_id: int,
        cancelled_by: str,
        reason: str = "cancelled",
        *,
        identity: str | None = None,
    ) -> WorkflowProposal:
        now = self._now()
        who = identity or current_identity().text

        def fn(conn: sqlite3.Connection) -> WorkflowProposal:
            _cancel_workflow_tx(conn, workflow_id, cancelled_by, reason, now, identity=who)
            return _fetch_workflow(conn, workflow_id)

        return await self._write(fn)

    # ------------------------------------------------------------------ scheduling

    async def list_ready_scheduled(self) -> list[ActionProposal]:
        """Validated scheduled actions that are due, approved (or needing no approval), and
        whose dependency completed."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            rows = conn.execute(
                f"SELECT * FROM action_proposals p WHERE p.scheduled_at IS NOT NULL AND "
                f"p.status = 'validated' AND {READY_SQL} ORDER BY p.scheduled_at LIMIT 1000",
                {"now": now},
            ).fetchall()
            return [_row_to_proposal(r) for r in rows]

        return await self._call(fn)

    async def list_ready(self, limit: int = 1000) -> list[ActionProposal]:
        """Every action a runner could start now."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            rows = conn.execute(
                "SELECT * FROM action_proposals p WHERE p.id IN (SELECT id FROM action_proposals"
                f" WHERE {_VALIDATED_READY} UNION ALL {_RETRY_WAITING_IDS}) AND {READY_SQL} "
                "ORDER BY p.id LIMIT :lim",
                {"now": now, "lim": limit},
            ).fetchall()
            return [_row_to_proposal(r) for r in rows]

        return await self._call(fn)

    async def update_scheduled_at(self, proposal_id: int, scheduled_at: datetime | None) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE action_proposals SET scheduled_at = ? WHERE id = ?",
                (to_db(scheduled_at), proposal_id),
            )

        await self._write(fn)

    # ------------------------------------------------------------------ retries

    async def list_retry_eligible(self) -> list[ActionProposal]:
        """Failed actions with a retry scheduled and due, within their retry limit."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> list[ActionProposal]:
            rows = conn.execute(
                "SELECT * FROM action_proposals WHERE status = 'failed' AND "
                "retry_count <= max_retries AND next_retry_at IS NOT NULL AND "
                "next_retry_at <= ? ORDER BY next_retry_at LIMIT 1000",
                (now,),
            ).fetchall()
            return [_row_to_proposal(r) for r in rows]

        return await self._call(fn)

    async def increment_retry_count(
        self, proposal_id: int, error_message: str | None = None
    ) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE action_proposals SET retry_count = retry_count + 1, last_error = ? "
                "WHERE id = ?",
                (error_message, proposal_id),
            )

        await self._write(fn)

    async def update_next_retry(self, proposal_id: int, next_retry_at: datetime | None) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE action_proposals SET next_retry_at = ? WHERE id = ?",
                (to_db(next_retry_at), proposal_id),
            )

        await self._write(fn)

    async def reset_for_retry(self, proposal_id: int) -> None:
        """failed -> validated for another attempt (guarded: only from failed)."""

        def fn(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE action_proposals SET status = 'validated', next_retry_at = NULL, "
                "finished_at = NULL WHERE id = ? AND status = 'failed'",
                (proposal_id,),
            )
            if cur.rowcount != 1:
                p = _fetch_proposal(conn, proposal_id)
                raise InvalidTransitionError(
                    f"action {proposal_id} is {p.status.value}, not failed"
                )

        await self._write(fn)

    # ------------------------------------------------------------------ runner

    async def claim_ready(
        self, runner_id: str, limit: int, lease_seconds: float, only_id: int | None = None
    ) -> list[Claim]:
        """Atomically move up to ``limit`` ready actions to executing under our lease, with a
        record per attempt. Returns nothing while the safety mode is OBSERVE."""
        now_dt = self.clock.now()

        def fn(conn: sqlite3.Connection) -> list[Claim]:
            return _claim_tx(
                conn, runner_id, limit, lease_seconds, now_dt, only_id, self.approval_gate
            )

        return await self._write(fn)

    async def finish_and_claim(
        self,
        runner_id: str,
        finished: Sequence[tuple[Claim, AttemptResult]],
        limit: int,
        lease_seconds: float,
    ) -> list[Claim]:
        """Record finished attempts and claim more work, in one transaction (the runner's hot
        path: one commit per batch instead of one per action)."""
        now_dt = self.clock.now()

        def fn(conn: sqlite3.Connection) -> list[Claim]:
            return _finish_and_claim_tx(
                conn, runner_id, finished, limit, lease_seconds, now_dt, self.approval_gate
            )

        return await self._write(fn)

    async def runner_cycle(
        self,
        runner_id: str,
        finished: Sequence[tuple[Claim, AttemptResult]],
        limit: int,
        lease_seconds: float,
    ) -> tuple[list[Claim], bool, bool]:
        """finish_and_claim plus the expiry and lost-lease probes, in one round trip:
        (claims, an unapproved proposal has expired, a lease has run out)."""
        return await self._write(
            _runner_cycle_tx,
            runner_id,
            finished,
            limit,
            lease_seconds,
            self.clock.now(),
            self.approval_gate,
        )

    def runner_cycle_now(
        self,
        runner_id: str,
        finished: Sequence[tuple[Claim, AttemptResult]],
        limit: int,
        lease_seconds: float,
    ) -> tuple[list[Claim], bool, bool] | None:
        """``runner_cycle`` if it can run right here without waiting (no await, so nothing
        can interrupt it); None if it did not run (also before the database is open)."""
        done = self._write_now(
            _runner_cycle_tx,
            runner_id,
            finished,
            limit,
            lease_seconds,
            self.clock.now(),
            self.approval_gate,
        )
        return None if done is _NOT_NOW else done  # type: ignore[return-value]

    async def complete_attempt(
        self, claim: Claim, runner_id: str, result_data: dict[str, Any] | None
    ) -> None:
        """Success: close the record, complete the action, advance or complete its workflow."""
        await self.record_attempt(claim, runner_id, AttemptResult(True, result_data))

    async def fail_attempt(
        self,
        claim: Claim,
        runner_id: str,
        error: str,
        *,
        retryable: bool,
        retry_delay_seconds: float | None,
        result_data: dict[str, Any] | None = None,
    ) -> datetime | None:
        """Failure: close the record; schedule the retry if the action's own limit allows
        (returns its time), else fail it for good, failing its workflow and cancelling the
        steps after it."""
        return await self.record_attempt(
            claim,
            runner_id,
            AttemptResult(False, result_data, error, retryable, retry_delay_seconds),
        )

    async def record_attempt(
        self, claim: Claim, runner_id: str, result: AttemptResult
    ) -> datetime | None:
        """Record one finished attempt; returns the next retry time if one was scheduled."""
        now_dt = self.clock.now()

        def fn(conn: sqlite3.Connection) -> datetime | None:
            from operator_core.db import faults  # builds on this module

            return faults.record_one(conn, claim, runner_id, result, now_dt)

        return await self._write(fn)

    async def schedule_retry(
        self, proposal_id: int, error: str, retry_delay_seconds: float, actor: str = "system"
    ) -> datetime | None:
        """Seed API behind ``schedule_next_retry``: count a failure of a failed or executing
        action and schedule its retry, or fail it for good when its retries are spent."""
        now_dt = self.clock.now()

        def fn(conn: sqlite3.Connection) -> datetime | None:
            return _fail_tx(
                conn, proposal_id, None, error, True, retry_delay_seconds, now_dt, actor
            )

        return await self._write(fn)

    async def cancel_attempt(self, claim: Claim, runner_id: str, reason: str) -> None:
        """A running attempt was stopped (kill switch, cancel or shutdown): record it as
        cancelled."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            _close_record(conn, claim, False, f"cancelled: {reason}", None, now)
            _stopping().end_cancelled(
                conn,
                claim.proposal,
                runner_id,
                reason,
                {"while": "executing", "attempt": claim.record.attempt},
                now,
            )

        await self._write(fn)

    async def requeue_attempt(self, claim: Claim, runner_id: str, reason: str) -> None:
        """Record an attempt as interrupted and give the action back to the queue without
        spending a retry (graceful runner shutdown: not the action's fault)."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            p = claim.proposal
            _close_record(conn, claim, False, f"interrupted: {reason}", None, now)
            cur = conn.execute(
                "UPDATE action_proposals SET status = 'validated', claimed_by = NULL, "
                "lease_expires_at = NULL WHERE id = ? AND claimed_by = ? AND "
                "status = 'executing' AND cancel_requested = 0",
                (p.id, runner_id),
            )
            if cur.rowcount != 1:
                # Asked to stop meanwhile: back in the queue it would never be claimed.
                _stopping().end_cancelled(
                    conn,
                    _fetch_proposal(conn, p.id or 0),
                    runner_id,
                    None,
                    {"while": "interrupted", "attempt": claim.record.attempt},
                    now,
                )
                return
            _append_audit(
                conn,
                AuditEntry(
                    "interrupted",
                    {"reason": reason, "attempt": claim.record.attempt},
                    "runner",
                    p.id,
                    p.workflow_id,
                ),
                now,
            )

        await self._write(fn)

    async def renew_leases(self, runner_id: str, ids: Sequence[int], lease_seconds: float) -> None:
        if not ids:
            return
        lease = to_db(self.clock.now() + timedelta(seconds=lease_seconds))
        marks = ",".join("?" * len(ids))

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"UPDATE action_proposals SET lease_expires_at = ? WHERE claimed_by = ? AND "
                f"status = 'executing' AND id IN ({marks})",
                (lease, runner_id, *ids),
            )

        await self._call(fn)

    async def stop_requested(self, runner_id: str) -> dict[int, str]:
        """Our executing actions that someone asked to stop, with the reason."""

        def fn(conn: sqlite3.Connection) -> dict[int, str]:
            rows = conn.execute(
                f"SELECT id, cancel_reason FROM action_proposals WHERE {_EXECUTING} AND "
                "claimed_by = ? AND cancel_requested = 1",
                (runner_id,),
            ).fetchall()
            return {r[0]: r[1] or "cancelled" for r in rows}

        return await self._call(fn)

    async def lost_attempts(self, runner_id: str | None = None) -> list[LostAttempt]:
        """The open attempts of actions whose lease ran out, with where their commands ran.
        ``runner_id``: the caller's own are not lost (it is alive, maybe unable to renew)."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> list[LostAttempt]:
            rows = conn.execute(LOST_ATTEMPTS_SQL, {"now": now, "runner": runner_id})
            return [LostAttempt(*row) for row in rows]

        return await self._call(fn)

    async def recover_expired_leases(
        self,
        retry_delay: Callable[[int], float],
        notes: Mapping[int, LostNote] | None = None,
        only: Collection[int] | None = None,
        runner_id: str | None = None,
    ) -> list[int]:
        """Actions left executing by a runner whose lease expired: record the lost attempt as
        failed ("runner lost", with what ``notes`` says of its processes) and retry it if
        attempts remain and its note allows (cancel it if a stop was asked).
        ``retry_delay(retry_count)`` gives the backoff. With ``only``, just those actions
        (the ones whose processes the caller has seen to). ``runner_id``: the caller's own
        actions are not lost (it is alive), whatever their lease says."""
        now_dt = self.clock.now()
        now = to_db(now_dt)
        notes = notes or {}

        def fn(conn: sqlite3.Connection) -> list[int]:
            from operator_core.db import faults  # builds on this module

            rows = conn.execute(
                "SELECT * FROM action_proposals INDEXED BY idx_action_proposals_state "
                f"WHERE {_EXECUTING} AND "
                "lease_expires_at IS NOT NULL AND lease_expires_at < ? "
                "AND claimed_by IS NOT ? LIMIT 1000",
                (now, runner_id),
            ).fetchall()
            recovered = []
            for row in rows:
                if only is not None and row["id"] not in only:
                    continue
                # Each apart: one that cannot be read or retried is failed for good.
                faults.apart(
                    conn,
                    row["id"],
                    None,
                    "runner lost, then: ",
                    now_dt,
                    _recover_one,
                    row,
                    retry_delay,
                    now_dt,
                    notes.get(row["id"]),
                )
                recovered.append(row["id"])
            return recovered

        if not await self._call(_has_expired_leases, now):
            return []
        return await self._write(fn)

    async def next_wakeup(self, after: datetime | None = None) -> datetime | None:
        """The earliest time after ``after`` (default now) at which something becomes due
        (schedule, retry, expiry, or a lease running out); None if nothing is waiting for a
        time. The runner passes the time its last cycle looked: what became due since then
        must wake it at once, not be skipped as past."""

        now = self._now() if after is None else to_db(after)

        def fn(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(NEXT_WAKEUP_SQL, {"now": now}).fetchone()
            return row[0] if row else None

        text = await self._call(fn)
        try:
            return from_db(text)
        except (TypeError, ValueError):  # a time written by hand: look again in a second
            return self.clock.now() + timedelta(seconds=1)

    # ------------------------------------------------------------------ kill switch

    async def kill_switch(self, actor: str, notice: KillNotice | None = None) -> KillSwitchResult:
        """OBSERVE mode; cancel every pending, scheduled and retry-waiting action and every
        open workflow; ask runners to stop executing ones. One transaction. ``notice``: the
        kill file this pull wrote (its time is when execution went off). No health check
        first: the emergency stop must work on a damaged file as long as it can."""
        return await self._write(
            _stopping().kill_switch_tx, actor, self._now(), notice, None, check=False
        )

    async def preview_kill_switch(self) -> dict[str, int]:
        """What the kill switch would cancel now (for a confirm dialog)."""

        def fn(conn: sqlite3.Connection) -> dict[str, int]:
            row = conn.execute(
                f"SELECT (SELECT COUNT(*) FROM ({_PROPOSED_IDS} UNION ALL {_VALIDATED_IDS})), "
                f"(SELECT COUNT(*) FROM ({_RETRY_WAITING_IDS})), "
                f"(SELECT COUNT(*) FROM action_proposals WHERE {_EXECUTING}), "
                "(SELECT COUNT(*) FROM workflows WHERE status IN ('pending', 'in_progress'))"
            ).fetchone()
            return {
                "pending": row[0],
                "retry_waiting": row[1],
                "executing": row[2],
                "workflows": row[3],
            }

        return await self.read(fn)

    # ------------------------------------------------------------------ safety

    async def get_safety_mode(self) -> tuple[str, datetime | None, str, str]:
        """(mode, changed_at, changed_by, reason)."""
        return await self.snapshot(lambda snap: snap.get_safety_mode())

    async def set_safety_mode(self, mode: str, actor: str, reason: str = "") -> bool:
        """Returns False if the mode was already that. EXECUTE first records a kill switch
        the database has not caught up with (it revives nothing), then removes the kill file
        under the write lock (a runner sees neither or both)."""
        now = self._now()

        def fn(conn: sqlite3.Connection) -> bool:
            current = conn.execute("SELECT mode FROM safety_state WHERE id = 1").fetchone()
            if mode == "execute" and _honour_kill_file(conn, current and current[0], now, actor):
                current = None
                try:
                    self.kill_file.clear()
                except OSError as exc:
                    raise DatabaseError(
                        f"cannot remove the kill file {self.kill_file.path}: "
                        f"{exc.strerror}; execution stays off"
                    ) from exc
            if current is not None and current[0] == mode:
                return False
            _set_mode(conn, mode, actor, reason, now)
            _append_audit(
                conn,
                AuditEntry("safety_mode_changed", {"mode": mode, "reason": reason}, actor),
                now,
            )
            return True

        return await self._write(fn, check=mode != "observe")  # OBSERVE is never refused

    # ------------------------------------------------------------------ audit

    async def append_audit_event(self, entry: AuditEntry) -> None:
        now = self._now()

        def fn(conn: sqlite3.Connection) -> None:
            _append_audit(conn, entry, now)

        await self._write(fn)

    async def list_audit_events(
        self,
        proposal_id: int | None = None,
        workflow_id: int | None = None,
        limit: int = 100,
        after_id: int = 0,
    ) -> list[AuditEvent]:
        """Newest ``limit`` events (optionally of one action or workflow), oldest first."""
        return await self.snapshot(
            lambda snap: snap.list_audit_events(proposal_id, workflow_id, limit, after_id)
        )

    async def verify_audit_chain(self) -> tuple[bool, int, str]:
        """Recompute the hash chain. Returns (ok, events checked, message)."""

        def fn(conn: sqlite3.Connection) -> tuple[bool, int, str]:
            prev = GENESIS_HASH
            expected_id = 1
            count = 0
            for row in conn.execute("SELECT * FROM action_audit_log ORDER BY id"):
                if row["id"] != expected_id:
                    return False, count, f"event {expected_id} is missing (found {row['id']})"
                if row["prev_hash"] != prev:
                    return False, count, f"event {row['id']}: chain broken (prev_hash differs)"
                digest = _audit_hash(
                    prev,
                    row["proposal_id"],
                    row["workflow_id"],
                    row["event_type"],
                    row["event_data"],
                    row["actor"],
                    row["timestamp"],
                )
                if digest != row["hash"]:
                    return False, count, f"event {row['id']}: contents were altered"
                prev = row["hash"]
                expected_id += 1
                count += 1
            seq = conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'action_audit_log'"
            ).fetchone()
            if seq is not None and seq[0] > count:
                return False, count, f"events {count + 1}..{seq[0]} were deleted"
            return True, count, f"{count} events, chain intact"

        return await self.read(fn)

    # ------------------------------------------------------------------ dashboard reads

    async def counts(self, by_status: bool = True) -> Counts:
        """Counts per dashboard pane, from indexes, and by status (see ``Snapshot.counts``)."""
        return await self.snapshot(lambda snap: snap.counts(by_status))

    async def list_pending_approvals(self, limit: int = 200) -> list[ActionProposal]:
        """Single actions awaiting approval, oldest first."""
        return await self.snapshot(lambda snap: snap.list_pending_approvals(limit))

    async def list_scheduled(self, limit: int = 200) -> list[ActionProposal]:
        """Validated actions with a future (or just-due) time, soonest first."""
        return await self.snapshot(lambda snap: snap.list_scheduled(limit))

    async def list_retry_backlog(self, limit: int = 200) -> list[ActionProposal]:
        """Actions waiting for a retry, soonest first."""
        return await self.snapshot(lambda snap: snap.list_retry_backlog(limit))

    async def list_workflow_steps(
        self, workflow_ids: Sequence[int]
    ) -> dict[int, list[ActionProposal]]:
        """Steps of several workflows in one query."""
        return await self.snapshot(lambda snap: snap.list_workflow_steps(workflow_ids))

    async def activity(self, minutes: int = 60) -> tuple[list[int], list[int]]:
        """Executions and failures per minute over the last ``minutes`` (oldest first)."""
        return await self.snapshot(lambda snap: snap.activity(minutes))

    async def snapshot(self, fn: Callable[[Snapshot], T], *, views: bool = False) -> T:
        """``fn(snapshot)`` on the database's thread, inside one read transaction: the reads
        it makes see one consistent state of the database, and cost one trip to the thread.
        The event loop stays free meanwhile (a dashboard refresh does not hold up keys).
        With ``views``, its actions, workflows and audit events are read as the plain
        objects of ``operator_core.model.views`` instead of models (see ``Snapshot``)."""

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN")
            try:
                return fn(Snapshot(conn, self.clock, views=views))
            finally:
                conn.execute("COMMIT")

        return await self._call(run)


class Snapshot:
    """Reads of the dashboard and ``operator status``, synchronous, on one connection inside
    ``ActionDB.snapshot``'s read transaction (ActionDB's own read methods go through it).

    With ``views``, actions, workflows and audit events come as ``ProposalView``,
    ``WorkflowView`` and ``AuditEventView`` (the models' attributes, no pydantic): what the
    dashboard reads, for display only."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock, *, views: bool = False) -> None:
        self._conn = conn
        self.clock = clock
        self.views = views

    def get_safety_mode(self) -> tuple[str, datetime | None, str, str]:
        """(mode, changed_at, changed_by, reason). A kill file the database has not caught
        up with yet is OBSERVE already."""
        row = self._conn.execute(
            "SELECT mode, changed_at, changed_by, reason FROM safety_state WHERE id = 1"
        ).fetchone()
        if row is not None and row[0] != "execute":
            return (row[0], from_db(row[1]), row[2], row[3])
        kill = getattr(self._conn, "kill_file", None)
        notice = kill.read() if kill is not None and kill.engaged() else None
        if notice is not None:
            return ("observe", notice.engaged_at, notice.actor, PENDING_REASON)
        if row is None:
            return ("execute", None, "system", "")
        return (row[0], from_db(row[1]), row[2], row[3])

    def counts(self, by_status: bool = True) -> Counts:
        """Counts per dashboard pane, from indexes, and by status. Without ``by_status`` (the
        dashboard's header shows only what is open) the count of every action by status is
        left out (empty): it walks the status index (every action but the validated ones,
        counted through their own two indexes), most of the read on a long history.
        """
        conn = self._conn
        if by_status:
            statuses = {
                r[0]: r[1]
                for r in conn.execute(
                    f"SELECT status, COUNT(*) FROM action_proposals WHERE {_IN_STATE_INDEX} "
                    "GROUP BY status"
                ).fetchall()
            }
            # Validated actions are either ready or awaiting approval (one index each).
            validated = conn.execute(f"SELECT COUNT(*) FROM ({_VALIDATED_IDS})").fetchone()[0]
            if validated:
                statuses = dict(sorted({**statuses, "validated": validated}.items()))
            executing = statuses.get("executing", 0)
        else:
            statuses = {}
            executing = conn.execute(
                f"SELECT COUNT(*) FROM action_proposals WHERE {_EXECUTING}"
            ).fetchone()[0]
        pending = conn.execute(
            f"SELECT COUNT(*) FROM action_proposals {_AWAITING_APPROVAL}"
        ).fetchone()[0]
        wf_pending = conn.execute(
            "SELECT COUNT(*) FROM workflows WHERE status = 'pending' AND "
            "requires_approval = 1 AND approved_at IS NULL"
        ).fetchone()[0]
        wf_open = conn.execute(
            "SELECT COUNT(*) FROM workflows WHERE status IN ('pending', 'in_progress')"
        ).fetchone()[0]
        # Same set as list_scheduled(): validated with a time, due or not yet.
        scheduled = conn.execute(f"SELECT COUNT(*) FROM action_proposals {_SCHEDULED}").fetchone()[
            0
        ]
        retry = conn.execute(f"SELECT COUNT(*) FROM action_proposals {_RETRY_WAITING}").fetchone()[
            0
        ]
        return Counts(
            by_status=statuses,
            awaiting_approval=pending,
            workflows_awaiting_approval=wf_pending,
            workflows_open=wf_open,
            scheduled=scheduled,
            retry_waiting=retry,
            executing=executing,
        )

    def list_workflows(
        self, status: WorkflowStatus | None = None, limit: int = 100, open_only: bool = False
    ) -> list[WorkflowProposal]:
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(WorkflowStatus(status).value)
        if open_only:
            clauses.append("status IN ('pending', 'in_progress')")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn.execute(
            f"SELECT * FROM workflows {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        ).fetchall()
        return [_row_to_workflow(r, self.views) for r in rows]

    def _proposals(self, where: str, order: str, limit: int) -> list[ActionProposal]:
        rows = self._conn.execute(
            f"SELECT * FROM action_proposals {where} ORDER BY {order} LIMIT ?", (limit,)
        ).fetchall()
        return [_row_to_proposal(r, self.views) for r in rows]

    def list_pending_approvals(self, limit: int = 200) -> list[ActionProposal]:
        """Single actions awaiting approval, oldest first."""
        return self._proposals(_AWAITING_APPROVAL, "id", limit)

    def list_scheduled(self, limit: int = 200) -> list[ActionProposal]:
        """Validated actions with a future (or just-due) time, soonest first."""
        return self._proposals(_SCHEDULED, "scheduled_at", limit)

    def list_retry_backlog(self, limit: int = 200) -> list[ActionProposal]:
        """Actions waiting for a retry, soonest first."""
        return self._proposals(_RETRY_WAITING, "next_retry_at", limit)

    def list_workflow_steps(self, workflow_ids: Sequence[int]) -> dict[int, list[ActionProposal]]:
        """Steps of several workflows in one query."""
        if not workflow_ids:
            return {}
        marks = ",".join("?" * len(workflow_ids))
        out: dict[int, list[ActionProposal]] = {w: [] for w in workflow_ids}
        for r in self._conn.execute(
            f"SELECT * FROM action_proposals WHERE workflow_id IN ({marks}) "
            "ORDER BY workflow_id, execution_order",
            tuple(workflow_ids),
        ).fetchall():
            p = _row_to_proposal(r, self.views)
            assert p.workflow_id is not None
            out[p.workflow_id].append(p)
        return out

    def activity(self, minutes: int = 60) -> tuple[list[int], list[int]]:
        """Executions and failures per minute over the last ``minutes`` (oldest first)."""
        start = self.clock.now() - timedelta(minutes=minutes)
        done = [0] * minutes
        failed = [0] * minutes
        for completed_at, success in self._conn.execute(
            "SELECT completed_at, success FROM action_records WHERE completed_at >= ? "
            "AND completed_at IS NOT NULL",
            (to_db(start),),
        ):
            ts = from_db(completed_at)
            assert ts is not None
            idx = int((ts - start).total_seconds() // 60)
            if 0 <= idx < minutes:
                done[idx] += 1
                if not success:
                    failed[idx] += 1
        return done, failed

    def list_audit_events(
        self,
        proposal_id: int | None = None,
        workflow_id: int | None = None,
        limit: int = 100,
        after_id: int = 0,
    ) -> list[AuditEvent]:
        """Newest ``limit`` events (optionally of one action or workflow), oldest first."""
        clauses, params = ["id > ?"], [after_id]
        if proposal_id is not None:
            clauses.append("proposal_id = ?")
            params.append(proposal_id)
        if workflow_id is not None:
            clauses.append("workflow_id = ?")
            params.append(workflow_id)
        rows = self._conn.execute(
            f"SELECT * FROM action_audit_log WHERE {' AND '.join(clauses)} "
            "ORDER BY id DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [_row_to_audit(r, self.views) for r in reversed(rows)]


# ---------------------------------------------------------------------- transaction helpers


_EXPIRED_PROBE = (
    "SELECT 1 FROM action_proposals INDEXED BY idx_action_proposals_expiry "
    "WHERE expires_at IS NOT NULL AND approved_at IS NULL AND expires_at <= :now "
    "AND status IN ('proposed', 'validated')"
)


def _has_expired(conn: sqlite3.Connection, now: str) -> bool:
    return conn.execute(_EXPIRED_PROBE + " LIMIT 1", {"now": now}).fetchone() is not None


def observe_message(changed_at: datetime | None, changed_by: str, reason: str) -> str:
    why = f" ({reason})" if reason else ""
    when = f" at {changed_at.strftime('%Y-%m-%d %H:%M:%S UTC')}" if changed_at else ""
    return (
        f"execution is off: safety mode is OBSERVE{why}, set by {changed_by}{when}; "
        "run 'operator resume' to allow execution again"
    )


def _require_execute(conn: sqlite3.Connection) -> bool:
    """Refuse the write transaction in hand while the mode is OBSERVE; else whether the
    database's approval mode is on. The same statement reads the audit chain's head, which
    the events the transaction appends will need."""
    row = conn.execute(
        "SELECT mode, changed_at, changed_by, reason, (SELECT hash FROM action_audit_log "
        "ORDER BY id DESC LIMIT 1), (SELECT approval_mode FROM policy WHERE id = 1) "
        "FROM safety_state WHERE id = 1"
    ).fetchone()
    if row is not None and row[0] != "execute":
        raise ObserveOnlyError(observe_message(from_db(row[1]), row[2], row[3]))
    kill = getattr(conn, "kill_file", None)
    if kill is not None and kill.engaged():
        notice = kill.read() or KillNotice("unknown", None)
        raise ObserveOnlyError(observe_message(notice.engaged_at, notice.actor, PENDING_REASON))
    if row is None:
        return False
    if isinstance(conn, _Connection):
        conn.audit_head = row[4] or GENESIS_HASH
    return bool(row[5])


_LEASE_PROBE = (
    "SELECT 1 FROM action_proposals INDEXED BY idx_action_proposals_state "
    f"WHERE {_EXECUTING} AND lease_expires_at < :now"
)


def _has_expired_leases(conn: sqlite3.Connection, now: str) -> bool:
    return conn.execute(_LEASE_PROBE + " LIMIT 1", {"now": now}).fetchone() is not None


# Actions asked to stop yet neither executing nor finished (an older version left such):
# never claimed, they would wait for ever. Read through idx_stop_leftover (schema v5), which
# holds nothing else.
_STOP_LEFTOVERS = """
SELECT id FROM action_proposals INDEXED BY idx_stop_leftover
WHERE cancel_requested <> 0
    AND (status IN ('proposed', 'validated') OR (status = 'failed' AND next_retry_at IS NOT NULL))
"""

# The probes at once, for the runner's cycle: whether a proposal expired, whether a lease
# ran out, whether an action was left asked to stop.
_PROBES_SQL = (
    f"SELECT EXISTS ({_EXPIRED_PROBE}), EXISTS ({_LEASE_PROBE}), EXISTS ({_STOP_LEFTOVERS})"
)


def _describe_status(p: ActionProposal) -> str:
    if p.status == ActionStatus.FAILED and p.next_retry_at is None:
        return "failed for good"
    if p.status == ActionStatus.CANCELLED and p.cancel_reason:
        return f"cancelled ({p.cancel_reason})"
    return p.status.value


def _describe_workflow(wf: WorkflowProposal) -> str:
    if wf.rejected_at:
        return "rejected"
    if wf.approved_at and wf.status == WorkflowStatus.PENDING:
        return "already approved"
    return wf.status.value


def _check_approvable(
    status: ActionStatus, approved_at: datetime | None, rejected_at: datetime | None, what: str
) -> None:
    if rejected_at is not None:
        raise InvalidTransitionError(f"{what} was already rejected")
    if approved_at is not None:
        raise InvalidTransitionError(f"{what} is already approved")
    if status not in (ActionStatus.PROPOSED, ActionStatus.VALIDATED):
        raise InvalidTransitionError(
            f"{what} is {status.value}; only a pending action can be approved or rejected"
        )


def _honour_kill_file(conn: sqlite3.Connection, mode: str | None, now: str, by: str) -> bool:
    """True if the kill file is there (one stat); then, if the database does not say OBSERVE
    yet, this transaction records the kill switch for whoever pulled it."""
    kill = getattr(conn, "kill_file", None)
    if kill is None or not kill.engaged():
        return False
    if mode != "observe":
        notice = kill.read() or KillNotice("unknown", None)
        _stopping().kill_switch_tx(conn, notice.actor, now, notice, by)
    return True


def _set_mode(conn: sqlite3.Connection, mode: str, actor: str, reason: str, now: str) -> None:
    conn.execute(
        "INSERT INTO safety_state (id, mode, changed_at, changed_by, reason) VALUES "
        "(1, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET mode = excluded.mode, "
        "changed_at = excluded.changed_at, changed_by = excluded.changed_by, "
        "reason = excluded.reason",
        (mode, now, actor, reason),
    )


_CLOSE_RECORD_SQL = (
    "UPDATE action_records SET completed_at = ?, success = ?, error_message = ?, "
    "result_data = ? WHERE id = ? AND completed_at IS NULL"
)
# _CLOSE_RECORD_SQL for a success without result data, with no None to bind.
_CLOSE_RECORD_OK_SQL = (
    "UPDATE action_records SET completed_at = ?, success = 1, error_message = NULL, "
    "result_data = NULL WHERE id = ? AND completed_at IS NULL"
)
_COMPLETE_SQL = (
    "UPDATE action_proposals SET status = 'completed', finished_at = ?, updated_at = ?, "
    "claimed_by = NULL, lease_expires_at = NULL, last_error = NULL "
    "WHERE id = ? AND status = 'executing' AND claimed_by = ?"
)


def _close_record(
    conn: sqlite3.Connection,
    claim: Claim,
    success: bool,
    error: str | None,
    result_data: dict[str, Any] | None,
    now: str | None,
) -> None:
    """Close this claim's attempt; a claim whose attempt was already closed (its lease expired
    and it was recovered, perhaps re-claimed since) is stale and may change nothing."""
    cur = conn.execute(
        _CLOSE_RECORD_SQL,
        (
            now,
            int(success),
            error,
            None if result_data is None else _json(result_data),
            claim.record.id,
        ),
    )
    if cur.rowcount != 1:
        raise InvalidTransitionError(
            f"attempt {claim.record.attempt} of action {claim.proposal.id} was already "
            "recorded (its lease expired); this claim is stale"
        )


def _runner_cycle_tx(
    conn: sqlite3.Connection,
    runner_id: str,
    finished: Sequence[tuple[Claim, AttemptResult]],
    limit: int,
    lease_seconds: float,
    now_dt: datetime,
    gate: ApprovalGate | None = None,
) -> tuple[list[Claim], bool, bool]:
    claims = _finish_and_claim_tx(conn, runner_id, finished, limit, lease_seconds, now_dt, gate)
    now = to_db(now_dt)
    expired, lost, leftover = conn.execute(_PROBES_SQL, {"now": now}).fetchone()
    if leftover:
        _stopping().sweep_leftovers(conn, now)
    return claims, bool(expired), bool(lost)


def _finish_and_claim_tx(
    conn: sqlite3.Connection,
    runner_id: str,
    finished: Sequence[tuple[Claim, AttemptResult]],
    limit: int,
    lease_seconds: float,
    now_dt: datetime,
    gate: ApprovalGate | None = None,
) -> list[Claim]:
    if finished:
        # All at once; only if one turns out stale (no longer ours, e.g. recovered after
        # its lease ran out) or cannot be recorded (e.g. a time out of range), again one by
        # one, each in its own savepoint (see faults.apart). The database's own trouble
        # (locked, full) fails the whole transaction, to be tried again.
        conn.execute("SAVEPOINT finish_all")
        try:
            if all(r.success and c.proposal.workflow_id is None for c, r in finished):
                _complete_all_tx(conn, finished, runner_id, to_db(now_dt) or "")
            else:
                for claim, result in finished:
                    _finish_tx(conn, claim, runner_id, result, now_dt)
        except Exception as exc:
            from operator_core.db import faults  # builds on this module

            if faults.trouble(exc) is not None:
                raise
            conn.execute("ROLLBACK TO finish_all")
            _forget_audit_head(conn)
            faults.finish_each(conn, runner_id, finished, now_dt)
        conn.execute("RELEASE finish_all")
    return _claim_tx(conn, runner_id, limit, lease_seconds, now_dt, None, gate)


def _complete_all_tx(
    conn: sqlite3.Connection,
    finished: Sequence[tuple[Claim, AttemptResult]],
    runner_id: str,
    now: str,
) -> None:
    """Every attempt succeeded and none is a workflow step (the usual batch): what
    ``_finish_tx`` does for each, with each statement run once for all of them."""
    if all(r.result_data is None for _, r in finished):
        cur = conn.executemany(_CLOSE_RECORD_OK_SQL, [(now, c.record.id) for c, _ in finished])
    else:
        cur = conn.executemany(
            _CLOSE_RECORD_SQL,
            [
                (now, 1, None, None if r.result_data is None else _json(r.result_data), c.record.id)
                for c, r in finished
            ],
        )
    if cur.rowcount != len(finished):
        raise InvalidTransitionError("an attempt of this batch was already recorded")
    cur = conn.executemany(
        _COMPLETE_SQL, [(now, now, c.proposal.id, runner_id) for c, _ in finished]
    )
    if cur.rowcount != len(finished):
        raise InvalidTransitionError(f"an action of this batch is no longer held by {runner_id}")
    _append_audits(
        conn,
        [
            AuditEntry("completed", {"attempt": c.record.attempt}, "runner", c.proposal.id, None)
            for c, _ in finished
        ],
        now,
    )


def _claim_tx(
    conn: sqlite3.Connection,
    runner_id: str,
    limit: int,
    lease_seconds: float,
    now_dt: datetime,
    only_id: int | None,
    gate: ApprovalGate | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` ready actions, each with its attempt record (one statement for
    all of them) and its ``execution_started`` event. What the runner's definitions (``gate``)
    or the database's approval mode say needs an approval it lacks never starts."""
    if limit <= 0:
        return []
    mode = conn.execute(
        "SELECT mode, (SELECT approval_mode FROM policy WHERE id = 1) FROM safety_state "
        "WHERE id = 1"
    ).fetchone()
    now = to_db(now_dt)
    assert now is not None
    if _honour_kill_file(conn, mode and mode[0], now, runner_id):
        return []
    if mode is None or mode[0] != "execute":
        return []
    lease = to_db(now_dt + timedelta(seconds=lease_seconds))
    rows = conn.execute(
        CLAIM_SQL, {"runner": runner_id, "lease": lease, "now": now, "lim": limit, "only": only_id}
    ).fetchall()
    if not rows:
        return []
    try:
        readable = [_row_to_proposal(row) for row in rows]
    except Exception:  # a row this version cannot read: fail it, claim the others
        from operator_core.db import faults

        readable = faults.readable(conn, rows, runner_id, now_dt)
    proposals = screen_claims(conn, readable, bool(mode[1]), gate, runner_id, now_dt)
    if not proposals:
        return []
    opened = _open_records(conn, [p.id for p in proposals], now, runner_id)
    claims = []
    started = []
    for p in proposals:
        record_id, attempt = opened[p.id]
        record = _trusted(
            _models().ActionRecord,
            dict(
                id=record_id,
                proposal_id=p.id or 0,
                attempt=attempt,
                started_at=now_dt,
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
        started.append(
            AuditEntry(
                "execution_started",
                {"attempt": attempt, "runner": runner_id},
                "runner",
                p.id,
                p.workflow_id,
            )
        )
        if p.workflow_id is not None:
            conn.execute(
                "UPDATE workflows SET status = 'in_progress' WHERE id = ? AND status = 'pending'",
                (p.workflow_id,),
            )
        claims.append(Claim(p, record))
    _append_audits(conn, started, now)
    return claims


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
_OPEN_RECORDS_SQL: dict[int, str] = {}
_OPEN_RECORDS_CHUNK = 100


def _open_records(
    conn: sqlite3.Connection, proposal_ids: Sequence[int | None], now: str, runner_id: str
) -> dict[int, tuple[int, int]]:
    """Open an attempt record for each of these (distinct) actions, one statement per 100:
    ``{proposal id: (record id, attempt)}``. Attempts are numbered across everything
    recorded (an interrupted attempt counts as one, though it spends no retry)."""
    opened: dict[int, tuple[int, int]] = {}
    for first in range(0, len(proposal_ids), _OPEN_RECORDS_CHUNK):
        chunk = proposal_ids[first : first + _OPEN_RECORDS_CHUNK]
        sql = _OPEN_RECORDS_SQL.get(len(chunk))
        if sql is None:
            sql = _OPEN_RECORDS_SQL[len(chunk)] = (
                "INSERT INTO action_records (proposal_id, attempt, started_at, runner)"
                " SELECT c.column1, COALESCE((SELECT MAX(r.attempt) FROM action_records r"
                " WHERE r.proposal_id = c.column1), 0) + 1, ?, ?"
                f" FROM (VALUES {', '.join(['(?)'] * len(chunk))}) AS c"
                " RETURNING proposal_id, id, attempt"
            )
        for pid, record_id, attempt in conn.execute(sql, (now, runner_id, *chunk)):
            opened[pid] = (record_id, attempt)
    return opened


def _finish_tx(
    conn: sqlite3.Connection,
    claim: Claim,
    runner_id: str,
    result: AttemptResult,
    now_dt: datetime,
) -> datetime | None:
    now = to_db(now_dt)
    p = claim.proposal
    _close_record(conn, claim, result.success, result.error, result.result_data, now)
    if not result.success:
        return _fail_tx(
            conn,
            p.id,
            runner_id,
            result.error or "failed",
            result.retryable,
            result.retry_delay_seconds,
            now_dt,
            "runner",
        )
    cur = conn.execute(_COMPLETE_SQL, (now, now, p.id, runner_id))
    if cur.rowcount != 1:
        raise InvalidTransitionError(f"action {p.id} is no longer held by {runner_id}")
    _append_audit(
        conn,
        AuditEntry("completed", {"attempt": claim.record.attempt}, "runner", p.id, p.workflow_id),
        now,
    )
    if p.workflow_id is not None:
        _advance_workflow(conn, p, now_dt)
    return None


def _fail_tx(
    conn: sqlite3.Connection,
    proposal_id: int | None,
    held_by: str | None,
    error: str,
    retryable: bool,
    retry_delay_seconds: float | None,
    now_dt: datetime,
    actor: str,
) -> datetime | None:
    """Count a failure: schedule the retry, or fail the action for good (and its workflow).
    ``held_by`` is the runner that must hold it; None (the seed API) accepts any failed or
    executing action."""
    now = to_db(now_dt)
    p = _fetch_proposal(conn, proposal_id or 0)
    if held_by is None:
        guard, guard_args = "status IN ('failed', 'executing')", ()
    else:
        guard, guard_args = "status = 'executing' AND claimed_by = ?", (held_by,)
    lost = (
        f"action {p.id} is no longer held by {held_by}"
        if held_by
        else (f"action {p.id} is {p.status.value}; only a failed or running action can be retried")
    )
    if p.cancel_requested and p.status in (ActionStatus.EXECUTING, ActionStatus.FAILED):
        # Asked to stop while it ran (cancel, kill switch, its workflow cancelled): a retry
        # would wait for ever, never claimed. The failure ends it as cancelled.
        _stopping().end_cancelled(
            conn, p, held_by, None, {"while": "executing", "error": error}, now, actor
        )
        return None
    if retryable and retry_delay_seconds is not None and p.retry_count < p.max_retries:
        next_at = now_dt + timedelta(seconds=retry_delay_seconds)
        cur = conn.execute(
            "UPDATE action_proposals SET status = 'failed', retry_count = retry_count + 1, "
            "last_error = ?, next_retry_at = ?, claimed_by = NULL, lease_expires_at = NULL "
            f"WHERE id = ? AND {guard}",
            (error, to_db(next_at), p.id, *guard_args),
        )
        if cur.rowcount != 1:
            raise InvalidTransitionError(lost)
        _append_audit(
            conn,
            AuditEntry(
                "retry_scheduled",
                {
                    "retry_count": p.retry_count + 1,
                    "max_retries": p.max_retries,
                    "next_retry_at": to_db(next_at),
                    "error": error,
                },
                actor,
                p.id,
                p.workflow_id,
            ),
            now,
        )
        return next_at
    cur = conn.execute(
        "UPDATE action_proposals SET status = 'failed', last_error = ?, next_retry_at = NULL, "
        f"finished_at = ?, claimed_by = NULL, lease_expires_at = NULL WHERE id = ? AND {guard}",
        (error, now, p.id, *guard_args),
    )
    if cur.rowcount != 1:
        raise InvalidTransitionError(lost)
    event = "retry_exhausted" if retryable else "failed"
    _append_audit(
        conn,
        AuditEntry(
            event,
            {
                "retry_count": p.retry_count,
                "max_retries": p.max_retries,
                "error": error,
                "retryable": retryable,
            },
            actor,
            p.id,
            p.workflow_id,
        ),
        now,
    )
    if p.workflow_id is not None:
        _fail_workflow(conn, p.workflow_id, p.execution_order, p.id, error, actor, now)
    return None


def _fail_workflow(
    conn: sqlite3.Connection,
    workflow_id: int,
    order: int,
    step_id: int | None,
    error: str,
    actor: str,
    now: str,
) -> None:
    """Step ``order`` failed for good: fail its workflow and cancel the steps after it."""
    conn.execute(
        "UPDATE workflows SET status = 'failed', finished_at = ? WHERE id = ? AND status IN "
        "('pending', 'in_progress')",
        (now, workflow_id),
    )
    later = _cancel_rows(
        conn,
        "workflow_id = ? AND execution_order > ?",
        (workflow_id, order),
        now,
        actor,
        f"step {order + 1} failed",
    )
    for pid in later:
        _append_audit(
            conn,
            AuditEntry(
                "cancelled", {"reason": f"step {order + 1} failed"}, actor, pid, workflow_id
            ),
            now,
        )
    _append_audit(
        conn,
        AuditEntry(
            "workflow_failed", {"failed_step": step_id, "error": error}, actor, None, workflow_id
        ),
        now,
    )


def _advance_workflow(conn: sqlite3.Connection, p: ActionProposal, now_dt: datetime) -> None:
    now = to_db(now_dt)
    nxt = conn.execute(
        "SELECT id, delay_seconds FROM action_proposals WHERE depends_on_proposal_id = ? AND "
        "workflow_id = ? AND status IN ('proposed', 'validated')",
        (p.id, p.workflow_id),
    ).fetchone()
    if nxt is not None:
        if nxt[1]:
            try:
                due = to_db(now_dt + timedelta(seconds=nxt[1]))
            except (TypeError, ValueError, OverflowError) as exc:
                # The next step's fault, not this one's (it ran): that step fails.
                from operator_core.db import faults

                faults.fail_outright(
                    conn,
                    nxt[0],
                    None,
                    f"its delay {nxt[1]!r} cannot be turned into a time: {faults.describe(exc)}",
                    now_dt,
                )
                return
            conn.execute("UPDATE action_proposals SET scheduled_at = ? WHERE id = ?", (due, nxt[0]))
        return
    remaining = conn.execute(
        "SELECT COUNT(*) FROM action_proposals WHERE workflow_id = ? AND status != 'completed'",
        (p.workflow_id,),
    ).fetchone()[0]
    if remaining == 0:
        conn.execute(
            "UPDATE workflows SET status = 'completed', finished_at = ? WHERE id = ? AND "
            "status IN ('pending', 'in_progress')",
            (now, p.workflow_id),
        )
        _append_audit(
            conn, AuditEntry("workflow_completed", {}, "runner", None, p.workflow_id), now
        )


def _recover_one(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    retry_delay: Callable[[int], float],
    now_dt: datetime,
    note: LostNote | None,
) -> None:
    """Close the attempt of a runner that was lost (``note``: what was done about its
    processes); retry the action if the note allows, or cancel it if a stop was asked."""
    now = to_db(now_dt)
    p = _row_to_proposal(row)
    runner = p.claimed_by or "?"
    error = f"runner lost ({runner})" + (f"; {note.text}" if note else "")
    conn.execute(
        "UPDATE action_records SET completed_at = ?, success = 0, error_message = ?"
        " WHERE proposal_id = ? AND completed_at IS NULL",
        (now, error, p.id),
    )
    if p.cancel_requested:
        _stopping().end_cancelled(conn, p, None, None, {"while": "runner lost"}, now)
        return
    data = (
        {"runner": runner}
        if note is None
        else {"runner": runner, "processes": note.text, "retry": note.retry}
    )
    _append_audit(conn, AuditEntry("runner_lost", data, "runner", p.id, p.workflow_id), now)
    _fail_tx(
        conn,
        p.id,
        runner,
        error,
        note is None or note.retry,
        retry_delay(p.retry_count),
        now_dt,
        "runner",
    )


def _cancel_workflow_tx(
    conn: sqlite3.Connection,
    workflow_id: int,
    by: str,
    reason: str,
    now: str,
    strict: bool = True,
    identity: str | None = None,
) -> None:
    wf = _fetch_workflow(conn, workflow_id)
    if wf.status not in (WorkflowStatus.PENDING, WorkflowStatus.IN_PROGRESS):
        if not strict:
            return
        raise InvalidTransitionError(
            f"workflow {workflow_id} is {wf.status.value}; only an open workflow can be cancelled"
        )
    conn.execute(
        "UPDATE workflows SET status = 'cancelled', finished_at = ? WHERE id = ?",
        (now, workflow_id),
    )
    ids = _cancel_rows(conn, "workflow_id = ?", (workflow_id,), now, by, reason, identity)
    running = conn.execute(
        "UPDATE action_proposals SET cancel_requested = 1, cancel_reason = ?, cancelled_by = ?, "
        "cancelled_identity = ? WHERE workflow_id = ? AND status = 'executing' RETURNING id",
        (reason, by, identity, workflow_id),
    ).fetchall()
    shown = by if identity is None else actor_text(by, identity)
    _append_audit(
        conn,
        AuditEntry(
            "workflow_cancelled",
            {"reason": reason, "steps": ids, "running": [r[0] for r in running]},
            shown,
            None,
            workflow_id,
        ),
        now,
    )
    for pid in ids:
        _append_audit(
            conn, AuditEntry("cancelled", {"reason": reason}, shown, pid, workflow_id), now
        )
