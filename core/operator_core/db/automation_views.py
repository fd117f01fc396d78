"""What the dashboard's Automations view reads, each in one read snapshot and bounded: the
automations with each one's newest execution, the executions in flight and the newest
others, one execution with the proposals it made, and one automation's version history.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from operator_core.db import automations as automation_db
from operator_core.db import executions as execution_db
from operator_core.db.automations import Automation, AutomationVersion
from operator_core.db.executions import Execution, ExecutionProposal, row_to_execution

OPEN_LIMIT = 200
RECENT_LIMIT = 50

# The open executions, newest first (idx_executions_open: only open rows are in it).
OPEN_SQL = """
SELECT * FROM automation_executions INDEXED BY idx_executions_open
WHERE status IN ('PENDING', 'RUNNING') ORDER BY id DESC LIMIT ?
"""

# The newest executions of any status (the primary key backwards).
RECENT_SQL = "SELECT * FROM automation_executions ORDER BY id DESC LIMIT ?"

# Each automation's newest execution: one seek per automation at the end of its name's run
# in idx_executions_automation (MAX over an index prefix), then the primary key.
LATEST_SQL = """
SELECT e.* FROM automations a
JOIN automation_executions e ON e.id = (
    SELECT MAX(id) FROM automation_executions WHERE automation_name = a.name)
"""


@dataclass(frozen=True)
class AutomationsView:
    automations: list[Automation]
    latest: dict[str, Execution]
    """Each automation's newest execution, by name."""
    executions: list[Execution]
    """In flight (up to OPEN_LIMIT) and the newest others (up to RECENT_LIMIT), newest
    first."""


def in_flight_and_recent(
    conn: sqlite3.Connection, open_limit: int = OPEN_LIMIT, recent_limit: int = RECENT_LIMIT
) -> list[Execution]:
    """Every open execution (up to ``open_limit``) however old, with the newest
    ``recent_limit`` of any status; newest first."""
    found = {r["id"]: r for r in conn.execute(OPEN_SQL, (open_limit,))}
    for r in conn.execute(RECENT_SQL, (recent_limit,)):
        found.setdefault(r["id"], r)
    return [row_to_execution(found[i]) for i in sorted(found, reverse=True)]


def latest_per_automation(conn: sqlite3.Connection) -> dict[str, Execution]:
    """Each automation's newest execution, by name; its cost grows with the automations,
    not with the executions (``executions.latest_per_automation`` groups them all)."""
    return {e.automation_name: e for e in map(row_to_execution, conn.execute(LATEST_SQL))}


def automations_view(conn: sqlite3.Connection) -> AutomationsView:
    return AutomationsView(
        automations=automation_db.list_all(conn),
        latest=latest_per_automation(conn),
        executions=in_flight_and_recent(conn),
    )


def execution_detail(
    conn: sqlite3.Connection, execution_id: int
) -> tuple[Execution | None, list[ExecutionProposal]]:
    """One execution (None: no such id) and the proposals its nodes made, oldest first."""
    execution = execution_db.get(conn, execution_id)
    if execution is None:
        return None, []
    return execution, execution_db.proposals(conn, execution_id)


def version_history(
    conn: sqlite3.Connection, name: str
) -> tuple[Automation | None, list[AutomationVersion]]:
    """One automation (None: no such name) and its versions, oldest first."""
    automation = automation_db.find(conn, name)
    if automation is None:
        return None, []
    return automation, automation_db.history(conn, name)
