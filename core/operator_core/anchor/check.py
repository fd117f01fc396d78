"""``operator audit verify`` in one call: the chain against the published checkpoints, then
the proposals table against the events, over one SQLite connection (a snapshot: run it
inside one read transaction so both passes see the same database)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from operator_core.anchor.checkpoint import SignedCheckpoint
from operator_core.anchor.crosscheck import (
    PROPOSAL_EVENTS_SQL,
    PROPOSALS_SQL,
    WORKFLOW_DECISIONS_SQL,
    cross_check,
)
from operator_core.anchor.keys import VerifierKey
from operator_core.anchor.verify import EVENTS_SQL, SEQUENCE_SQL, Report, verify_events


def verify_database(
    conn: sqlite3.Connection,
    checkpoints: Iterable[SignedCheckpoint],
    key: VerifierKey,
    origin: str,
) -> Report:
    seq = conn.execute(SEQUENCE_SQL).fetchone()
    report = verify_events(
        conn.execute(EVENTS_SQL), checkpoints, key, origin, seq[0] if seq else None
    )
    state = cross_check(
        conn.execute(PROPOSALS_SQL),
        conn.execute(PROPOSAL_EVENTS_SQL),
        conn.execute(WORKFLOW_DECISIONS_SQL),
    )
    report.findings.merge(state)
    return report
