"""``automations list`` and ``automations executions`` on the CLI's fast path (``fast``):
the rows read as the executor reads them (``db.automation_rows``), printed as the Typer
commands in ``automations.py`` and ``executions.py`` print them (``formats``)."""

from __future__ import annotations

from operator_core.cli.formats import (
    AUTOMATION_COLUMNS,
    EXECUTION_COLUMNS,
    automation_row,
    execution_row,
    json_text,
    table_text,
)
from operator_core.db import automation_rows as rows

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    import sqlite3


def automations_list(conn: sqlite3.Connection, as_json: bool) -> str:
    found = rows.list_all(conn)
    if as_json:
        return json_text([a.to_json() for a in found])
    return table_text(AUTOMATION_COLUMNS, [automation_row(a) for a in found])


def executions_list(
    conn: sqlite3.Connection, opts: dict[str, str], limit: int, as_json: bool
) -> str | None:
    """None where the Typer command refuses (an unknown status or automation): it says
    why."""
    status = opts.get("status")
    if status is not None:
        status = status.upper()
        if status not in rows.STATUSES:
            return None
    name = opts.get("automation")
    if name is not None and rows.find(conn, name) is None:
        return None
    found = rows.list_executions(conn, name, status, limit)
    if as_json:
        return json_text([e.to_json(with_definition=False) for e in found])
    return table_text(EXECUTION_COLUMNS, [execution_row(e) for e in found])
