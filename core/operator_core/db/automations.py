"""Automations and their append-only version history.

``automations`` holds one row per name: whether it is enabled, and the current version with
the two facts of it the runner selects by (trigger event and scope). ``automation_versions``
holds every definition ever applied; the database refuses to change or delete one, and to
append any number but the next. Apply, rollback, enable and disable are each one write
transaction with its audit event.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from operator_core.clock import from_db, to_db
from operator_core.db import audit as audit_log

# The reads the fast path shares live in automation_rows; importable from here as before.
from operator_core.db.automation_rows import AUTOMATION_SQL as AUTOMATION_SQL
from operator_core.db.automation_rows import LIST_AUTOMATIONS_SQL as LIST_AUTOMATIONS_SQL
from operator_core.db.automation_rows import Automation as Automation
from operator_core.db.automation_rows import find as find
from operator_core.db.automation_rows import list_all as list_all
from operator_core.db.dialect import insert_id
from operator_core.db.encode import dumps
from operator_core.db.records import AuditEntry
from operator_core.errors import OperatorError


class AutomationNotFoundError(OperatorError, LookupError):
    """No automation has this name, or it has no such version."""


# A new automation at version 1.
INSERT_AUTOMATION_SQL = """
INSERT INTO automations (name, enabled, scope_type, scope_team, trigger_event, current_version,
    created_at, created_by, updated_at, updated_by)
VALUES (:name, :enabled, :scope_type, :scope_team, :trigger_event, 1, :now, :by, :now, :by)
"""

# Make the version just appended current, guarded by the version it replaces (primary key).
BUMP_VERSION_SQL = """
UPDATE automations SET current_version = :version, scope_type = :scope_type,
    scope_team = :scope_team, trigger_event = :trigger_event, updated_at = :now, updated_by = :by
WHERE id = :id AND current_version = :version - 1
"""

# Turn an automation on or off; no row changes when it already was (primary key).
SET_ENABLED_SQL = """
UPDATE automations SET enabled = :enabled, updated_at = :now, updated_by = :by
WHERE id = :id AND enabled <> :enabled
"""

# Append a version (the table's triggers refuse any number but the next).
INSERT_VERSION_SQL = """
INSERT INTO automation_versions (automation_id, version, definition, hash, changed_by,
    changed_identity, changed_at, note, copied_from)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

# One version (the primary key).
VERSION_SQL = "SELECT * FROM automation_versions WHERE automation_id = ? AND version = ?"

# Every version, oldest first (the primary key).
HISTORY_SQL = "SELECT * FROM automation_versions WHERE automation_id = ? ORDER BY version"


@dataclass(frozen=True)
class AutomationVersion:
    version: int
    definition: dict[str, Any]
    hash: str
    changed_by: str
    changed_identity: str
    changed_at: datetime | None
    note: str
    copied_from: int | None

    def to_json(self, with_definition: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "hash": self.hash,
            "changed_by": self.changed_by,
            "changed_identity": self.changed_identity,
            "changed_at": to_db(self.changed_at),
            "note": self.note,
            "copied_from": self.copied_from,
        }
        if with_definition:
            data["definition"] = self.definition
        return data


@dataclass(frozen=True)
class Stored:
    """What an apply or a rollback did: ``changed`` is False when no version was added."""

    automation: Automation
    version: int
    created: bool
    changed: bool


@dataclass(frozen=True)
class NewVersion:
    """A checked definition to store, and the facts of it the automation row keeps."""

    definition: dict[str, Any]
    hash: str
    scope_type: str
    scope_team: str | None
    trigger_event: str
    enabled: bool
    note: str
    copied_from: int | None = None


def _version(row: sqlite3.Row) -> AutomationVersion:
    return AutomationVersion(
        version=row["version"],
        definition=json.loads(row["definition"]),
        hash=row["hash"],
        changed_by=row["changed_by"],
        changed_identity=row["changed_identity"],
        changed_at=from_db(row["changed_at"]),
        note=row["note"],
        copied_from=row["copied_from"],
    )


def require(conn: sqlite3.Connection, name: str) -> Automation:
    found = find(conn, name)
    if found is None:
        raise AutomationNotFoundError(f"no automation named {name!r}")
    return found


def version(conn: sqlite3.Connection, name: str, number: int) -> AutomationVersion:
    a = require(conn, name)
    row = conn.execute(VERSION_SQL, (a.id, number)).fetchone()
    if row is None:
        raise AutomationNotFoundError(
            f"automation {name!r} has no version {number} (versions 1 to {a.current_version})"
        )
    return _version(row)


def history(conn: sqlite3.Connection, name: str) -> list[AutomationVersion]:
    a = require(conn, name)
    return [_version(r) for r in conn.execute(HISTORY_SQL, (a.id,))]


def store(
    conn: sqlite3.Connection, name: str, new: NewVersion, actor: str, identity: str, now: str
) -> Stored:
    """Create the automation at version 1, or append version n+1 when ``new`` differs from
    the current version (by hash); an equal definition writes nothing."""
    existing = find(conn, name)
    if existing is None:
        automation_id = insert_id(
            conn,
            INSERT_AUTOMATION_SQL,
            {
                "name": name,
                "enabled": int(new.enabled),
                "scope_type": new.scope_type,
                "scope_team": new.scope_team,
                "trigger_event": new.trigger_event,
                "now": now,
                "by": actor,
            },
        )
        _append(conn, automation_id, 1, new, actor, identity, now)
        _audit(conn, "automation_created", name, 1, new, actor, now)
        return Stored(require(conn, name), 1, created=True, changed=True)
    current = conn.execute(VERSION_SQL, (existing.id, existing.current_version)).fetchone()
    if current["hash"] == new.hash:
        return Stored(existing, existing.current_version, created=False, changed=False)
    number = existing.current_version + 1
    _append(conn, existing.id, number, new, actor, identity, now)
    bumped = conn.execute(
        BUMP_VERSION_SQL,
        {
            "version": number,
            "scope_type": new.scope_type,
            "scope_team": new.scope_team,
            "trigger_event": new.trigger_event,
            "now": now,
            "by": actor,
            "id": existing.id,
        },
    )
    if bumped.rowcount != 1:
        raise AutomationNotFoundError(f"automation {name!r} changed meanwhile; try again")
    event = "automation_rolled_back" if new.copied_from is not None else "automation_changed"
    _audit(conn, event, name, number, new, actor, now)
    return Stored(require(conn, name), number, created=False, changed=True)


def _append(
    conn: sqlite3.Connection,
    automation_id: int,
    number: int,
    new: NewVersion,
    actor: str,
    identity: str,
    now: str,
) -> None:
    conn.execute(
        INSERT_VERSION_SQL,
        (
            automation_id,
            number,
            dumps(new.definition),
            new.hash,
            actor,
            identity,
            now,
            new.note,
            new.copied_from,
        ),
    )


def _audit(
    conn: sqlite3.Connection,
    event_type: str,
    name: str,
    number: int,
    new: NewVersion,
    actor: str,
    now: str,
) -> None:
    data: dict[str, Any] = {"automation": name, "version": number, "hash": new.hash}
    if new.note:
        data["note"] = new.note
    if new.copied_from is not None:
        data["copied_from"] = new.copied_from
    audit_log.append(conn, AuditEntry(event_type, data, actor), now)


def set_enabled(conn: sqlite3.Connection, name: str, enabled: bool, actor: str, now: str) -> bool:
    """Turn the automation on or off (audited); False when it already was."""
    a = require(conn, name)
    done = conn.execute(
        SET_ENABLED_SQL, {"enabled": int(enabled), "now": now, "by": actor, "id": a.id}
    )
    if done.rowcount == 0:
        return False
    event = "automation_enabled" if enabled else "automation_disabled"
    data = {"automation": name, "version": a.current_version}
    audit_log.append(conn, AuditEntry(event, data, actor), now)
    return True
