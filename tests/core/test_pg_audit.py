"""The audit chain's own module (db/audit.py), unchanged, on a real PostgreSQL: appends,
a rolled-back append leaving no gap, and the same tampering detected as on SQLite."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from operator_core.db import audit
from operator_core.db.pg.connection import PgDatabase
from operator_core.db.pg.txn import BEGIN_READ, BEGIN_WRITE
from operator_core.db.records import AuditEntry

NOW = "2026-12-03T10:00:00.000000Z"


def _entry(n: int) -> AuditEntry:
    return AuditEntry("noted", {"n": n, "why": "50% ?"}, f"actor{n}", None, None)


def _owner(url: str, *sql: str) -> None:
    """Act as the tables' owner behind the engine's back, triggers off (a tamperer)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE action_audit_log DISABLE TRIGGER USER")
        for statement in sql:
            conn.execute(statement)  # type: ignore[arg-type]
        conn.execute("ALTER TABLE action_audit_log ENABLE TRIGGER USER")


@pytest.fixture
def chained(pg_url: str) -> Any:
    """Five events appended through audit.append and append_all, and one rolled back."""
    db = PgDatabase(pg_url)

    def rolled_back(conn: Any) -> None:
        audit.append(conn, _entry(99), NOW)
        raise RuntimeError("the operation failed after appending")

    db.run_txn(BEGIN_WRITE, audit.append, _entry(1), NOW)
    with pytest.raises(RuntimeError):
        db.run_txn(BEGIN_WRITE, rolled_back)
    db.run_txn(BEGIN_WRITE, audit.append_all, [_entry(2), _entry(3), _entry(4)], NOW)
    db.run_txn(BEGIN_WRITE, audit.append, _entry(5), NOW)
    yield db
    db.close_sync()


def _verify(db: PgDatabase) -> tuple[bool, int, str]:
    return db.run_txn(BEGIN_READ, audit.verify_chain)


def test_the_chain_verifies_with_no_gap_after_a_rollback(chained: PgDatabase) -> None:
    assert _verify(chained) == (True, 5, "5 events, chain intact")
    ids = chained.run_txn(
        BEGIN_READ, lambda c: [r[0] for r in c.execute("SELECT id FROM action_audit_log")]
    )
    assert sorted(ids) == [1, 2, 3, 4, 5]


def test_noting_reports_what_a_write_appended(chained: PgDatabase) -> None:
    result, appended = chained.run_txn(BEGIN_WRITE, audit.noting, audit.append, _entry(6), NOW)
    assert result is None
    assert appended is not None and appended[0] == 6 and appended[2] == ("noted",)


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        (["UPDATE action_audit_log SET actor = 'mallory' WHERE id = 3"], "event 3: contents"),
        (["DELETE FROM action_audit_log WHERE id = 3"], "event 3 is missing"),
        (["DELETE FROM action_audit_log WHERE id >= 4"], "events 4..5 were deleted"),
        (
            [
                "UPDATE action_audit_log SET prev_hash = 'x', hash = 'y' WHERE id = 2",
            ],
            "event 2: chain broken",
        ),
    ],
)
def test_tampering_is_found_as_on_sqlite(
    chained: PgDatabase, pg_url: str, tamper: list[str], found: str
) -> None:
    _owner(pg_url, *tamper)
    ok, _, message = _verify(chained)
    assert not ok and found in message
