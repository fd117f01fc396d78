"""Reads of one connection that need nothing of the engine: the safety mode, the policy,
the identities recorded for an action or workflow, lists of actions and a workflow's steps.

Apart from the modules that change these (``safety``, ``policy``, ``proposals``,
``workflows``, which re-export them) so that a reading command imports no writer, no
aiosqlite and no pydantic: ``operator status`` and the CLI's fast path (``cli/fast.py``)
read through here and ``snapshot``.
"""

from __future__ import annotations

from operator_core.clock import from_db, to_db
from operator_core.db.rows import row_to_proposal
from operator_core.model.states import ActionStatus

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    import sqlite3
    from datetime import datetime
    from typing import Any

    from operator_core.model.types import ActionProposal

# The mode as recorded, with who set it and why (primary key).
READ_MODE_SQL = "SELECT mode, changed_at, changed_by, reason FROM safety_state WHERE id = 1"

# The policy row (primary key; a NULL setting has not been seeded yet and means off).
POLICY_SQL = "SELECT approval_mode, four_eyes, changed_at, changed_by FROM policy WHERE id = 1"

# The OS identities recorded for one action or one workflow (primary key).
ACTION_IDENTITIES_SQL = """
SELECT proposed_identity, approved_identity, rejected_identity, cancelled_identity
FROM action_proposals WHERE id = ?
"""
WORKFLOW_IDENTITIES_SQL = """
SELECT proposed_identity, approved_identity, rejected_identity FROM workflows WHERE id = ?
"""

# A workflow's steps in order (idx_action_proposals_workflow).
STEPS_SQL = "SELECT * FROM action_proposals WHERE workflow_id = ? ORDER BY execution_order"

# list_proposals' filters. A status is written as SQL text (one of the enum's values), with
# the condition of the partial index that holds it (idx_action_proposals_state leaves the
# validated out); validated actions are read through their own two indexes.
IN_STATE = "status = '{status}' AND status <> 'validated'"
VALIDATED_IDS = """id IN (
    SELECT id FROM action_proposals
    WHERE status = 'validated' AND (requires_approval = 0 OR approved_at IS NOT NULL)
    UNION ALL
    SELECT id FROM action_proposals
    WHERE status IN ('proposed', 'validated') AND requires_approval <> 0
        AND approved_at IS NULL AND status = 'validated')"""


def read_mode(conn: sqlite3.Connection) -> tuple[str, datetime | None, str, str]:
    """(mode, changed_at, changed_by, reason). A kill file the database has not caught up
    with yet is OBSERVE already."""
    row = conn.execute(READ_MODE_SQL).fetchone()
    if row is not None and row[0] != "execute":
        return (row[0], from_db(row[1]), row[2], row[3])
    kill = getattr(conn, "kill_file", None)
    notice = kill.read() if kill is not None and kill.engaged() else None
    if notice is not None:
        from operator_core.db.killfile import PENDING_REASON

        return ("observe", notice.engaged_at, notice.actor, PENDING_REASON)
    if row is None:
        return ("execute", None, "system", "")
    return (row[0], from_db(row[1]), row[2], row[3])


class Policy:
    """The database's approval policy (a plain class: a named tuple would import typing)."""

    __slots__ = ("approval_mode", "four_eyes", "changed_at", "changed_by", "seeded")

    def __init__(
        self,
        approval_mode: bool,
        four_eyes: bool,
        changed_at: datetime | None,
        changed_by: str | None,
        seeded: bool,
    ) -> None:
        self.approval_mode = approval_mode
        self.four_eyes = four_eyes
        self.changed_at = changed_at
        self.changed_by = changed_by
        self.seeded = seeded

    def as_dict(self) -> dict[str, Any]:
        return {
            "approval_mode": self.approval_mode,
            "four_eyes": self.four_eyes,
            "policy_changed_at": to_db(self.changed_at),
            "policy_changed_by": self.changed_by,
        }


def read_policy(conn: sqlite3.Connection) -> Policy:
    row = conn.execute(POLICY_SQL).fetchone()
    if row is None:
        return Policy(False, False, None, None, False)
    return Policy(
        bool(row[0]),
        bool(row[1]),
        from_db(row[2]),
        row[3],
        row[0] is not None and row[1] is not None,
    )


def identities(conn: sqlite3.Connection, workflow: bool, row_id: int) -> dict[str, str | None]:
    """The OS identities recorded for one action or workflow (None: not done, or recorded
    before identities were)."""
    if workflow:
        row = conn.execute(WORKFLOW_IDENTITIES_SQL, (row_id,)).fetchone()
        names = ("proposed", "approved", "rejected")
    else:
        row = conn.execute(ACTION_IDENTITIES_SQL, (row_id,)).fetchone()
        names = ("proposed", "approved", "rejected", "cancelled")
    return {f"{n}_identity": (row[i] if row else None) for i, n in enumerate(names)}


def proposals_query(
    status: ActionStatus | None, ticket_id: int | None, limit: int | None, offset: int
) -> tuple[str, list[Any]]:
    """``list_proposals``' query and parameters: newest first, bounded by ``limit`` (None
    for everything)."""
    clauses: list[str] = []
    params: list[Any] = []
    if status is not None:
        # The status as SQL text (one of the enum's values), so the planner can match it
        # to the partial index that holds it.
        value = ActionStatus(status).value
        if value == "validated":
            clauses.append(VALIDATED_IDS)
        else:
            clauses.append(IN_STATE.format(status=value))
    if ticket_id is not None:
        clauses.append("ticket_id = ?")
        params.append(ticket_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT * FROM action_proposals {where} ORDER BY id DESC LIMIT ? OFFSET ?"
    return sql, [*params, -1 if limit is None else limit, offset]


def list_proposals(
    conn: sqlite3.Connection,
    status: ActionStatus | None = None,
    limit: int | None = 1000,
    offset: int = 0,
    ticket_id: int | None = None,
    views: bool = False,
) -> list[ActionProposal]:
    """Newest first (``ProposalView`` objects with ``views``)."""
    sql, params = proposals_query(status, ticket_id, limit, offset)
    return [row_to_proposal(r, views) for r in conn.execute(sql, params).fetchall()]


def workflow_actions(
    conn: sqlite3.Connection, workflow_id: int, views: bool = False
) -> list[ActionProposal]:
    """A workflow's steps in order."""
    return [row_to_proposal(r, views) for r in conn.execute(STEPS_SQL, (workflow_id,))]
