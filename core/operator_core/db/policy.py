"""Approval policy as the database keeps it, and the checks that rest on it.

Approval mode and the four-eyes rule are settings of the database (the ``policy`` row), so
every process that shares it agrees: the environment and the executor's arguments only seed
a database whose policy is not set yet. Changing a setting is an audited write. The checks
here run inside the engine's transactions: four-eyes and expiry at
approval, and the runner's last look at what it claimed before an attempt starts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from operator_core.clock import from_db, to_db
from operator_core.db import audit
from operator_core.db.cancel import CANCEL_ONE_SQL, cancel, cancel_workflow_tx
from operator_core.db.lookups import Policy, read_policy
from operator_core.db.records import AuditEntry
from operator_core.db.shared import require_exclusive
from operator_core.errors import ApprovalError, ConfigError
from operator_core.identity import same_person

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal

SETTINGS = ("approval_mode", "four_eyes")
"""The policy's settings, as columns of the policy row."""

SETTING_NAMES = {"approval_mode": "approval-mode", "four_eyes": "four-eyes"}
"""Each setting as ``operator policy set`` names it."""

SOURCES = {
    "approval_mode": "--approval-mode / OPERATOR_APPROVAL_MODE / approval_mode=",
    "four_eyes": "OPERATOR_FOUR_EYES / four_eyes=",
}


# Seed the settings still NULL; the ones already set are left alone (a concurrent first
# opener may have seeded them meanwhile: the caller re-reads).
SEED_SQL = """
UPDATE policy SET
    approval_mode = COALESCE(approval_mode, :approval_mode),
    four_eyes = COALESCE(four_eyes, :four_eyes),
    changed_at = COALESCE(changed_at, :now),
    changed_by = COALESCE(changed_by, :actor)
WHERE id = 1 AND (approval_mode IS NULL OR four_eyes IS NULL)
"""

SET_APPROVAL_MODE_SQL = (
    "UPDATE policy SET approval_mode = ?, changed_at = ?, changed_by = ? WHERE id = 1"
)
SET_FOUR_EYES_SQL = "UPDATE policy SET four_eyes = ?, changed_at = ?, changed_by = ? WHERE id = 1"

# The four-eyes rule's inputs for one action or one workflow: whether the rule is on, and
# who proposed it (rows from before identities were recorded only have the label).
FOUR_EYES_ACTION_SQL = """
SELECT (SELECT four_eyes FROM policy WHERE id = 1), proposed_identity, proposed_by
FROM action_proposals WHERE id = ?
"""
FOUR_EYES_WORKFLOW_SQL = """
SELECT (SELECT four_eyes FROM policy WHERE id = 1), proposed_identity, proposed_by
FROM workflows WHERE id = ?
"""

# The earliest expiry among a workflow's steps still waiting.
WORKFLOW_EXPIRY_SQL = """
SELECT MIN(expires_at) FROM action_proposals
WHERE workflow_id = ? AND status IN ('proposed', 'validated') AND expires_at IS NOT NULL
"""


# A claimed action that may not start after all goes back to waiting for its approval: the
# claim is released and no attempt was opened.
HOLD_SQL = """
UPDATE action_proposals SET status = 'validated', requires_approval = 1, claimed_by = NULL,
    lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND status = 'executing' AND claimed_by = :runner
"""
# A held step makes its workflow wait for approval again, with every step still to run.
HOLD_WORKFLOW_SQL = """
UPDATE workflows SET requires_approval = 1, status = 'pending'
WHERE id = ? AND status IN ('pending', 'in_progress') AND approved_at IS NULL
"""
HOLD_WORKFLOW_STEPS_SQL = """
UPDATE action_proposals SET requires_approval = 1
WHERE workflow_id = ? AND status IN ('proposed', 'validated') AND approved_at IS NULL
"""
# A claimed action whose approval window had closed is cancelled as expired instead.
EXPIRE_CLAIMED_SQL = """
UPDATE action_proposals SET status = 'cancelled', cancelled_at = :now, cancelled_by = 'system',
    cancel_reason = 'expired', finished_at = :now, claimed_by = NULL, lease_expires_at = NULL,
    updated_at = :now
WHERE id = :id AND status = 'executing' AND claimed_by = :runner
"""


class PolicyConflictError(ConfigError):
    """A process asked for a policy other than the one the database holds."""


def on_off(value: bool) -> str:
    return "on" if value else "off"


def seed_policy(
    conn: sqlite3.Connection, requested: dict[str, bool | None], actor: str, now: str
) -> Policy:
    """Write the settings not set yet from ``requested`` (None: off), audited; runs in a
    write transaction, only for a database whose policy is not seeded."""
    values = {name: int(bool(requested.get(name))) for name in SETTINGS}
    if conn.execute(SEED_SQL, {**values, "now": now, "actor": actor}).rowcount:
        policy = read_policy(conn)
        audit.append(
            conn,
            AuditEntry(
                "policy_seeded", {name: on_off(getattr(policy, name)) for name in SETTINGS}, actor
            ),
            now,
        )
    return read_policy(conn)


def check_requested(policy: Policy, requested: dict[str, bool | None]) -> None:
    """Hold every explicit request to what the database says: a disagreement is refused,
    never applied and never ignored (neither more nor less safety than the database's
    policy is granted silently)."""
    for name in SETTINGS:
        asked = requested.get(name)
        held = getattr(policy, name)
        if asked is not None and asked != held:
            flag = SETTING_NAMES[name]
            raise PolicyConflictError(
                f"this database's {flag} is {on_off(held)} but {on_off(asked)} was asked for "
                f"({SOURCES[name]}); the database's policy applies to every process: run "
                f"'operator policy set {flag} {on_off(asked)}' to change it, or drop the "
                "setting"
            )


def set_setting(
    conn: sqlite3.Connection, name: str, value: bool, actor: str, reason: str, now: str
) -> bool:
    """Change one setting (audited); False if it already had that value."""
    before = read_policy(conn)
    if before.seeded and getattr(before, name) == value:
        return False
    sql = SET_APPROVAL_MODE_SQL if name == "approval_mode" else SET_FOUR_EYES_SQL
    conn.execute(sql, (int(value), now, actor))
    conn.execute(SEED_SQL, {"approval_mode": 0, "four_eyes": 0, "now": now, "actor": actor})
    audit.append(
        conn,
        AuditEntry(
            "policy_changed",
            {
                "setting": SETTING_NAMES[name],
                "from": on_off(getattr(before, name)),
                "to": on_off(value),
                "reason": reason,
            },
            actor,
        ),
        now,
    )
    return True


def check_four_eyes(
    conn: sqlite3.Connection, workflow: bool, row_id: int, approver: str, what: str
) -> None:
    """Refuse the approval if the database's four-eyes rule is on and ``approver`` (an OS
    identity) is the person who proposed it."""
    row = conn.execute(
        FOUR_EYES_WORKFLOW_SQL if workflow else FOUR_EYES_ACTION_SQL, (row_id,)
    ).fetchone()
    if row is None or not row[0]:
        return
    proposer = row[1] or row[2] or ""
    if same_person(proposer, approver):
        raise ApprovalError(
            f"four-eyes rule: {approver} proposed {what} and cannot also approve it; "
            "another person must (identities come from the OS account, not --actor)"
        )


def lapsed(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def workflow_expiry(conn: sqlite3.Connection, workflow_id: int) -> datetime | None:
    return from_db(conn.execute(WORKFLOW_EXPIRY_SQL, (workflow_id,)).fetchone()[0])


ApprovalGate = Callable[[str], bool]
"""Whether the runner's own definition of an action (by name) requires approval."""


def screen_claims(
    conn: sqlite3.Connection,
    proposals: list[ActionProposal],
    approval_mode: bool,
    gate: ApprovalGate | None,
    runner_id: str,
    now_dt: datetime,
) -> list[ActionProposal]:
    """The runner's last look before attempts start, in Python over the claimed batch: an
    action approved after its expiry is cancelled as expired; one that needs approval by
    this runner's definitions or the database's approval mode and has none goes back to
    waiting for it (or expires, if its window has closed). Returns those that may start."""
    keep: list[ActionProposal] = []
    stopped: list[AuditEntry] = []
    now = to_db(now_dt)
    for p in proposals:
        v = p.__dict__
        approved_at, expires_at = v["approved_at"], v["expires_at"]
        if approved_at is not None:
            if expires_at is None or approved_at <= expires_at:
                keep.append(p)
                continue
            require_exclusive(conn, "an action approved too late is expired")
            why = "approved after its expiry"
        elif approval_mode or (gate is not None and gate(v["action_name"])):
            require_exclusive(conn, "a claim held for approval holds its workflow")
            why = (
                "the database's approval mode is on"
                if approval_mode
                else "its definition on this runner requires approval"
            )
            if not lapsed(expires_at, now_dt):
                conn.execute(HOLD_SQL, {"id": v["id"], "runner": runner_id, "now": now})
                if v["workflow_id"] is not None:
                    conn.execute(HOLD_WORKFLOW_SQL, (v["workflow_id"],))
                    conn.execute(HOLD_WORKFLOW_STEPS_SQL, (v["workflow_id"],))
                stopped.append(
                    AuditEntry(
                        "approval_required",
                        {"reason": why, "runner": runner_id},
                        "runner",
                        v["id"],
                        v["workflow_id"],
                    )
                )
                continue
            why = f"needs approval ({why}) and its expiry passed"
        else:
            keep.append(p)
            continue
        conn.execute(EXPIRE_CLAIMED_SQL, {"id": v["id"], "runner": runner_id, "now": now})
        stopped.append(AuditEntry("expired", {"reason": why}, "system", v["id"], v["workflow_id"]))
        if v["workflow_id"] is not None:
            cancel_workflow_tx(conn, v["workflow_id"], "system", "expired", now or "", strict=False)
    if stopped:
        audit.append_all(conn, stopped, now or "")
    return keep


def with_approval(
    p: ActionProposal, entries: list[AuditEntry]
) -> tuple[ActionProposal, list[AuditEntry]]:
    """A proposal stored while the database's approval mode is on needs approval, whatever
    its proposer assumed (its ``proposed`` event says so too)."""
    if p.requires_approval:
        return p, entries
    return p.model_copy(update={"requires_approval": True}), held_entries(entries)


def held_entries(entries: list[AuditEntry]) -> list[AuditEntry]:
    """Proposal events that say approval is required after all."""
    return [
        e._replace(event_data={**e.event_data, "requires_approval": True})
        if "requires_approval" in e.event_data
        else e
        for e in entries
    ]


def expire_at_approval(conn: sqlite3.Connection, proposal_id: int, now: str) -> None:
    """An approval that comes after the expiry expires the action instead."""
    cancel(conn, CANCEL_ONE_SQL, now, "system", "expired", id=proposal_id)
    audit.append(
        conn,
        AuditEntry("expired", {"reason": "approval came after its expiry"}, "system", proposal_id),
        now,
    )
