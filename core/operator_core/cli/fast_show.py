"""``actions show`` on the CLI's fast path (``fast``): the reads the Typer command makes
through the executor (``reading.actions_show``), made on the fast path's connection as plain
views, and the same text (``show_action``). What only the subject can say (what will run,
the action's budget, whether an approval still matches) comes from the facts the last CLI
process that loaded the subject kept (``subject_facts``) where they still hold, and else
from the subject, loaded as the Typer command loads it (pydantic: most of what a show costs
then), which keeps them for the next show.
"""

from __future__ import annotations

# The C module behind the sqlite3 package, as ``fast_read`` opens the database with it.
import _sqlite3 as sqlite3

from operator_core.cli import subject_facts
from operator_core.cli.formats import model_json, state_label
from operator_core.clock import SYSTEM_CLOCK, from_db
from operator_core.db.lookups import identities
from operator_core.db.rows import (
    PROPOSAL_SQL,
    RECORDS_SQL,
    TICKET_SQL,
    record_values,
    row_to_proposal,
)
from operator_core.db.snapshot import Snapshot
from operator_core.jsontext import loads
from operator_core.model.views import View

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

RECORDS_LIMIT = 100
AUDIT_LIMIT = 200
"""As ``reading.actions_show`` reads them (``list_records``' default, its audit limit)."""
TICKET_FIELDS = (
    *("id", "title", "summary", "severity", "status", "service", "team", "assignee"),
    *("metadata", "created_at", "acknowledged_at", "resolved_at", "updated_at"),
)
"""``Ticket``'s fields, in order (the times last)."""


def show_data(
    conn: sqlite3.Connection, db: str, target: int, subject_spec: str
) -> dict[str, Any] | None:
    """What the Typer command prints, as its ``--json`` has it; None where it would say
    something else (no such action): it says why."""
    row = conn.execute(PROPOSAL_SQL, (target,)).fetchone()
    if row is None:
        return None
    p = row_to_proposal(row, views=True)
    # ``db.fingerprints.binding``'s columns, of the row just read.
    bound = (row["fingerprint_sha256"], row["fingerprint"], row["approval_voided"])
    facts = subject_facts.lookup(db, subject_spec, p.action_name, row["parameters"] or "{}")
    approval = _approval(bound, facts[2]) if facts is not None else None
    if facts is not None and approval is not None:
        preview, budget = facts[0], facts[1]
    else:
        preview, budget, approval = _from_subject(db, subject_spec, p, bound)
    records = conn.execute(RECORDS_SQL, (target, RECORDS_LIMIT)).fetchall()
    events = Snapshot(conn, SYSTEM_CLOCK, views=True).list_audit_events(target, None, AUDIT_LIMIT)
    ticket = conn.execute(TICKET_SQL, (p.ticket_id,)).fetchone() if p.ticket_id else None
    origin = None
    if row["automation_execution_id"] is not None:  # as ``proposal_origin``'s JOIN finds it
        from operator_core.db.automation_rows import proposal_origin

        origin = proposal_origin(conn, target)
    return {
        "action": model_json(p),
        "state": state_label(p),
        "preview": preview,
        "budget": budget,
        "budget_wait": None,  # ``fast`` leaves a spent budget to the Typer path
        "approval": approval,
        "records": [_record_json(r) for r in records],
        "audit": [model_json(e) for e in events],
        "ticket": _ticket_json(ticket) if ticket else None,
        "identities": identities(conn, False, target),
        "automation": origin.to_json() if origin else None,
    }


def _approval(bound: tuple[Any, ...], now_sha256: str) -> dict[str, Any] | None:
    """``ApprovalCheck.of(bound, now, True).to_json()`` where ``now`` has this SHA-256, or
    None where what differs must be explained (by the subject's own fingerprint)."""
    sha256, canonical, voided = bound
    if sha256 is None or canonical is None:
        return {"sha256": None, "runs": None, "matches": None, "differs": None, "voided": voided}
    if sha256 != now_sha256:
        return None
    runs = loads(canonical).get("runs")  # ``Fingerprint.runs``
    return {
        "sha256": sha256,
        "runs": runs if isinstance(runs, str) else None,
        "matches": True,
        "differs": None,
        "voided": voided,
    }


def _from_subject(
    db: str, spec: str, p: Any, bound: tuple[Any, ...]
) -> tuple[Any, Any, dict[str, Any]]:
    """(preview, budget, approval) as the Typer command takes them of the subject; the
    facts are kept for the next show."""
    import asyncio

    from operator_core.actions.fingerprint import ApprovalCheck, Fingerprinter
    from operator_core.actions.registry import ActionRegistry
    from operator_core.db.fingerprints import Binding
    from operator_core.subjects.loader import load_subject

    subject = load_subject(spec)
    try:
        registry = ActionRegistry.from_subject(subject)
        definition = registry.get_definition(p.action_name)
        preview = None
        if p.action_name in registry:
            preview = subject.preview(p.action_name, p.parameters)
        now = Fingerprinter(registry).of(p.action_name, p.parameters)
        approval = ApprovalCheck.of(Binding(*bound), now, True).to_json()
        subject_facts.remember(db, spec, registry, [(p.action_name, p.parameters)])
        budget = definition.budget.describe() if definition and definition.budget else None
        return preview, budget, approval
    finally:
        asyncio.run(subject.aclose())


def _record_json(row: Any) -> dict[str, Any]:
    """``row_to_record(row).model_dump(mode="json")``."""
    return model_json(View.of(record_values(row)))


def _ticket_json(row: Any) -> dict[str, Any]:
    """``row_to_ticket(row).model_dump(mode="json")``."""
    values = {k: row[k] for k in TICKET_FIELDS}
    values["metadata"] = loads(row["metadata"])
    for key in TICKET_FIELDS[-4:]:
        values[key] = from_db(row[key])
    return model_json(View.of(values))
