"""Reads by status go through partial indexes (schema v4) and give a plain scan's answers.

The status index leaves validated actions out, so that a proposal writes no status index;
validated actions are found through the ready index and the awaiting-approval index, which
between them must hold every one of them.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operator_core.db.actions import ActionDB
from operator_core.db.connection import raw_connection
from operator_core.db.schema import MIGRATIONS
from operator_core.model.types import ActionStatus

NOW = "2026-11-21T12:00:00.000000Z"
PAST = "2026-11-21T11:00:00.000000Z"
LATER = "2026-11-21T13:00:00.000000Z"

ROWS = st.lists(
    st.tuples(
        st.sampled_from([s.value for s in ActionStatus]),
        st.sampled_from([0, 1, 2]),  # requires_approval: anything but 0 needs an approval
        st.booleans(),  # approved
        st.sampled_from([None, PAST, LATER]),  # next_retry_at
    ),
    max_size=30,
)


def _insert(path: Path, rows: list[tuple[str, int, bool, str | None]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for status, requires, approved, retry_at in rows:
        conn.execute(
            "INSERT INTO action_proposals (action_name, parameters, reason, status, proposed_at,"
            " requires_approval, approved_at, next_retry_at, claimed_by, lease_expires_at)"
            " VALUES ('noop', '{}', 'r', ?, ?, ?, ?, ?, ?, ?)",
            (
                status,
                PAST,
                requires,
                PAST if approved else None,
                retry_at,
                "runner-x" if status == "executing" else None,
                LATER if status == "executing" else None,
            ),
        )
    conn.execute("COMMIT")
    conn.close()


def _plain(path: Path, where: str) -> list[int]:
    conn = sqlite3.connect(path)
    ids = [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM action_proposals NOT INDEXED WHERE {where} ORDER BY id"
        )
    ]
    conn.close()
    return ids


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS)
def test_indexed_reads_by_status_agree_with_a_plain_scan(
    rows: list[tuple[str, int, bool, str | None]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "operator.db"
        asyncio.run(_check(path, rows))


async def _check(path: Path, rows: list[tuple[str, int, bool, str | None]]) -> None:
    async with ActionDB(path):
        pass
    _insert(path, rows)
    async with ActionDB(path) as db:
        conn = sqlite3.connect(path)
        plain_counts = dict(
            conn.execute(
                "SELECT status, COUNT(*) FROM action_proposals NOT INDEXED GROUP BY status"
            )
        )
        conn.close()
        assert (await db.counts()).by_status == plain_counts
        assert (await db.counts(by_status=False)).executing == plain_counts.get("executing", 0)
        for status in ActionStatus:
            listed = await db.list_proposals(status=status, limit=None)
            assert [p.id for p in listed] == _plain(path, f"status = '{status.value}'")[::-1]
        awaiting = _plain(
            path,
            "status IN ('proposed', 'validated') AND requires_approval <> 0"
            " AND approved_at IS NULL",
        )
        assert [p.id for p in await db.list_pending_approvals()] == awaiting
        pending = _plain(path, "status IN ('proposed', 'validated')")
        retry_waiting = _plain(path, "status = 'failed' AND next_retry_at IS NOT NULL")
        preview = await db.preview_kill_switch()
        assert (preview["pending"], preview["retry_waiting"], preview["executing"]) == (
            len(pending),
            len(retry_waiting),
            plain_counts.get("executing", 0),
        )
        result = await db.kill_switch("tester")
        assert result.cancelled_actions == sorted(pending + retry_waiting)
        assert result.executing_signalled == _plain(path, "status = 'executing'")
        assert (
            _plain(
                path,
                "status IN ('proposed', 'validated') OR "
                "(status = 'failed' AND next_retry_at IS NOT NULL)",
            )
            == []
        )


def _full_scans(conn: sqlite3.Connection, statements: list[str]) -> list[str]:
    """The statements that read action_proposals whole (a SCAN not through an index)."""
    found = []
    for sql in dict.fromkeys(" ".join(s.split()) for s in statements):
        if "action_proposals" not in sql or not sql.startswith(("SELECT", "UPDATE", "DELETE")):
            continue
        if re.search(r"FROM action_proposals ORDER BY id DESC LIMIT \d+ OFFSET", sql):
            continue  # the newest first, stopped by its LIMIT
        plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]
        if any(re.fullmatch(r"SCAN (action_proposals|p|d)", step) for step in plan):
            found.append(sql)
    return found


async def test_reads_by_status_walk_indexes_not_the_history(db_path: Path) -> None:
    async with ActionDB(db_path):
        pass
    _insert(db_path, [(s.value, r, False, PAST) for s in ActionStatus for r in (0, 1)])
    statements: list[str] = []
    async with ActionDB(db_path) as db:
        raw = raw_connection(db._conn)  # type: ignore[arg-type]  # the engine's own connection
        raw.set_trace_callback(statements.append)
        await db.counts()
        await db.counts(by_status=False)
        for status in ActionStatus:
            await db.list_proposals(status=status)
        await db.list_proposals()
        await db.list_pending_approvals()
        await db.list_scheduled()
        await db.list_retry_backlog()
        await db.list_ready()
        await db.list_ready_scheduled()
        await db.list_retry_eligible()
        await db.stop_requested("runner-x")
        await db.next_wakeup()
        await db.preview_kill_switch()
        await db.expire_proposals()
        await db.recover_expired_leases(lambda attempt: 1.0)
        await db.cancel_all_pending("tester")
        await db.kill_switch("tester")
        raw.set_trace_callback(None)
    assert len(statements) > 20
    conn = sqlite3.connect(db_path)
    assert _full_scans(conn, statements) == []
    # The check itself sees a scan where there is one.
    assert _full_scans(conn, ["SELECT id FROM action_proposals WHERE status = 'completed'"])
    conn.close()


async def test_a_version_3_database_moves_to_the_partial_status_index(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, step in enumerate(MIGRATIONS[:3], start=1):
        step(conn)
        conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    _insert(
        path,
        [
            ("validated", 1, False, None),
            ("validated", 0, False, None),
            ("completed", 0, False, None),
            ("executing", 0, False, None),
        ],
    )
    async with ActionDB(path) as db:
        counts = await db.counts()
        assert counts.by_status == {"completed": 1, "executing": 1, "validated": 2}
        assert counts.awaiting_approval == 1
    conn = sqlite3.connect(path)
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(action_proposals)")}
    conn.close()
    assert "idx_action_proposals_status" not in indexes
    assert {"idx_action_proposals_state", "idx_awaiting_approval"} <= indexes
