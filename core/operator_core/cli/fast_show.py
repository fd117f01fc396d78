"""``actions show`` on the CLI's fast path (``fast``): the reads the Typer command makes
through the executor (``reading.actions_show``), made on the fast path's connection with the
same functions, and the same text (``show_action``). It loads the subject as the Typer
command does: what will run, the action's budget and whether an approval still matches are
the subject's to say. That import (pydantic) is most of what this command costs."""

from __future__ import annotations

import sqlite3
from typing import Any

RECORDS_LIMIT = 100
AUDIT_LIMIT = 200
"""As ``reading.actions_show`` reads them (``list_records``' default, its audit limit)."""


def show_data(conn: sqlite3.Connection, target: int, subject_spec: str) -> dict[str, Any] | None:
    """What the Typer command prints, as its ``--json`` has it; None where it would say
    something else (no such action): it says why."""
    import asyncio

    from operator_core.actions.fingerprint import ApprovalCheck, Fingerprinter
    from operator_core.actions.registry import ActionRegistry
    from operator_core.cli.formats import state_label
    from operator_core.clock import SYSTEM_CLOCK
    from operator_core.db import fingerprints as fingerprint_db
    from operator_core.db.automation_rows import proposal_origin
    from operator_core.db.lookups import identities
    from operator_core.db.rows import (
        PROPOSAL_SQL,
        RECORDS_SQL,
        row_to_proposal,
        row_to_record,
        row_to_ticket,
    )
    from operator_core.db.snapshot import Snapshot
    from operator_core.db.tickets import TICKET_SQL
    from operator_core.subjects.loader import load_subject

    row = conn.execute(PROPOSAL_SQL, (target,)).fetchone()
    if row is None:
        return None
    # The subject before anything that depends on it, as the Typer command loads it first.
    subject = load_subject(subject_spec)
    try:
        registry = ActionRegistry.from_subject(subject)
        p = row_to_proposal(row)
        records = conn.execute(RECORDS_SQL, (target, RECORDS_LIMIT)).fetchall()
        events = Snapshot(conn, SYSTEM_CLOCK).list_audit_events(target, None, AUDIT_LIMIT)
        ticket = None
        if p.ticket_id:
            found = conn.execute(TICKET_SQL, (p.ticket_id,)).fetchone()
            ticket = row_to_ticket(found) if found else None
        definition = registry.get_definition(p.action_name)
        preview = None
        if p.action_name in registry:
            preview = subject.preview(p.action_name, p.parameters)
        bound = fingerprint_db.binding(conn, target)
        now = Fingerprinter(registry).of(p.action_name, p.parameters)
        origin = proposal_origin(conn, target)
        return {
            "action": p.model_dump(mode="json"),
            "state": state_label(p),
            "preview": preview,
            "budget": definition.budget.describe() if definition and definition.budget else None,
            "budget_wait": None,  # ``fast`` leaves a spent budget to the Typer path
            "approval": ApprovalCheck.of(bound, now, True).to_json(),
            "records": [row_to_record(r).model_dump(mode="json") for r in records],
            "audit": [e.model_dump(mode="json") for e in events],
            "ticket": ticket.model_dump(mode="json") if ticket else None,
            "identities": identities(conn, False, target),
            "automation": origin.to_json() if origin else None,
        }
    finally:
        asyncio.run(subject.aclose())
