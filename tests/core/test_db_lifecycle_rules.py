"""Lifecycle rules of ActionDB the seeds got wrong: atomic workflows, approval gates, attempt
numbering, time comparison, row reading, snapshots and the audit hash."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from operator_core.db.actions import ActionDB
from operator_core.model.types import ActionProposal, ActionStatus


def _step(name: str, **kw: object) -> ActionProposal:
    return ActionProposal(action_name=name, reason="r", status=ActionStatus.VALIDATED, **kw)


async def test_create_workflow_is_atomic(db_path: Path) -> None:
    """A step that cannot be stored leaves neither the workflow nor the earlier steps."""
    async with ActionDB(db_path) as db:
        with pytest.raises(sqlite3.IntegrityError):
            await db.create_workflow(
                "wf",
                "d",
                [_step("a"), _step("b", ticket_id=999)],  # no ticket 999: FK fails
            )
        assert await db.list_workflows() == []
        assert await db.list_proposals() == []


async def test_create_workflow_chains_each_step_to_the_previous(db_path: Path) -> None:
    async with ActionDB(db_path) as db:
        wf = await db.create_workflow("wf", "d", [_step("a"), _step("b"), _step("c")])
        steps = await db.list_workflow_actions(wf)
    assert [s.execution_order for s in steps] == [0, 1, 2]
    assert steps[0].depends_on_proposal_id is None
    assert steps[1].depends_on_proposal_id == steps[0].id
    assert steps[2].depends_on_proposal_id == steps[1].id


async def test_unapproved_workflow_step_is_never_ready(db_path: Path) -> None:
    """The seeds treated `workflow_id IS NOT NULL` as approval; it is not."""
    past = datetime.now(UTC) - timedelta(minutes=5)
    async with ActionDB(db_path) as db:
        wf = await db.create_workflow("wf", "d", [_step("a", scheduled_at=past)])
        assert await db.list_ready_scheduled() == []
        assert await db.list_ready() == []
        assert await db.claim_ready("r1", 10, 30) == []
        await db.approve_workflow(wf, "alice@ops")
        ready = await db.list_ready_scheduled()
        assert [p.workflow_id for p in ready] == [wf]
        step = ready[0]
        assert step.approved_by == "alice@ops" and step.approved_at is not None


async def test_workflow_needing_no_approval_runs_without_one(db_path: Path) -> None:
    async with ActionDB(db_path) as db:
        wf = await db.create_workflow("wf", "d", [_step("a", requires_approval=False)])
        claims = await db.claim_ready("r1", 10, 30)
    assert [c.proposal.workflow_id for c in claims] == [wf]


async def test_a_batch_claim_numbers_each_attempt_after_those_recorded(db_path: Path) -> None:
    """A claim of many actions opens one attempt record for each (in statements of up to
    100), numbered after the attempts that action already has, and hands those records
    back with the right action."""
    async with ActionDB(db_path) as db:
        ids = [
            (await db.create_proposal(_step("a", requires_approval=False))).id for _ in range(230)
        ]
    earlier = "2026-01-01T00:00:00.000000Z"
    with sqlite3.connect(db_path) as conn:  # action i has already been tried i % 3 times
        conn.executemany(
            "INSERT INTO action_records (proposal_id, attempt, started_at, completed_at, "
            "success) VALUES (?, ?, ?, ?, 0)",
            [(pid, n, earlier, earlier) for i, pid in enumerate(ids) for n in range(1, i % 3 + 1)],
        )
    conn.close()
    async with ActionDB(db_path) as db:
        claims = await db.claim_ready("r1", 250, 30)
    assert sorted(c.proposal.id for c in claims) == ids
    with sqlite3.connect(db_path) as conn:
        opened = {
            pid: (rid, attempt)
            for rid, pid, attempt in conn.execute(
                "SELECT id, proposal_id, attempt FROM action_records WHERE completed_at IS NULL"
            )
        }
    conn.close()
    assert {c.proposal.id: (c.record.id, c.record.attempt) for c in claims} == opened
    assert {pid: attempt for pid, (_, attempt) in opened.items()} == {
        pid: i % 3 + 1 for i, pid in enumerate(ids)
    }


@pytest.fixture
def tokyo_time() -> Iterator[None]:
    """Local time UTC+9, so local and UTC wall clocks differ by nine hours."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


async def test_naive_local_and_aware_times_compare_correctly(
    db_path: Path, tokyo_time: None
) -> None:
    """The seeds stored whatever isoformat() gave and compared it with naive local now:
    an aware UTC time an hour ahead sorted nine hours behind and ran eight hours early."""
    now_utc = datetime.now(UTC)
    now_local = datetime.now()  # naive, Tokyo
    async with ActionDB(db_path) as db:
        cases = {
            "aware_future": now_utc + timedelta(hours=1),
            "naive_future": now_local + timedelta(hours=1),
            "aware_past": now_utc - timedelta(minutes=1),
            "naive_past": now_local - timedelta(minutes=1),
        }
        for name, when in cases.items():
            p = await db.create_proposal(_step(name, scheduled_at=when, requires_approval=False))
            assert p.scheduled_at is not None and p.scheduled_at.tzinfo is not None
        ready = {p.action_name for p in await db.list_ready_scheduled()}
        stored = await db.get_proposal(2)
    assert ready == {"aware_past", "naive_past"}
    assert stored is not None and stored.scheduled_at is not None
    # The naive local time was read as Tokyo time: the same instant as now_utc + 1h.
    assert abs((stored.scheduled_at - (now_utc + timedelta(hours=1))).total_seconds()) < 1


async def test_an_action_row_reads_the_same_whatever_the_column_order(db_path: Path) -> None:
    """Rows are read by column name, through a getter built once per column order."""
    from operator_core.db.rows import row_to_proposal

    when = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    async with ActionDB(db_path) as db:
        stored = await db.create_proposal(
            _step("a", parameters={"n": 1}, scheduled_at=when, max_retries=5, ticket_id=None)
        )
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        columns = [d[1] for d in conn.execute("PRAGMA table_info(action_proposals)")]
        straight = conn.execute("SELECT * FROM action_proposals").fetchone()
        reversed_row = conn.execute(
            f"SELECT {', '.join(reversed(columns))} FROM action_proposals"
        ).fetchone()
    finally:
        conn.close()
    a, b = row_to_proposal(straight), row_to_proposal(reversed_row)
    assert a == b
    assert (a.id, a.parameters, a.scheduled_at, a.max_retries, a.status) == (
        stored.id,
        {"n": 1},
        when,
        5,
        ActionStatus.VALIDATED,
    )


async def test_a_snapshot_reads_one_state_while_another_connection_writes(db_path: Path) -> None:
    async with ActionDB(db_path) as db:
        await db.create_proposal(_step("a", requires_approval=True))

        def read_twice(snap):  # type: ignore[no-untyped-def]
            before = (snap.counts(), snap.list_pending_approvals())
            other = sqlite3.connect(db_path, isolation_level=None)
            try:
                other.execute(
                    "UPDATE action_proposals SET approved_at = '2026-11-21T09:00:00."
                    "000000Z', approved_by = 'other'"
                )
            finally:
                other.close()
            return before, (snap.counts(), snap.list_pending_approvals())

        (counts1, pending1), (counts2, pending2) = await db.snapshot(read_twice)
        assert counts1 == counts2 and counts1.awaiting_approval == 1
        assert [p.id for p in pending1] == [p.id for p in pending2] == [1]
        assert (await db.counts()).awaiting_approval == 0, "the write did land"


@given(
    st.text(),
    st.one_of(st.none(), st.integers()),
    st.one_of(st.none(), st.integers()),
    st.text(),
    st.text(),
    st.text(),
    st.text(),
)
def test_the_audit_hash_is_the_hash_of_the_json_array(
    prev: str, pid: int | None, wid: int | None, kind: str, data: str, actor: str, at: str
) -> None:
    """Built directly for speed, the hashed payload must stay byte for byte what the JSON
    encoder writes: existing chains are verified against it."""
    import hashlib

    from operator_core.db.audit import audit_hash
    from operator_core.db.encode import dumps

    payload = dumps([prev, pid, wid, kind, data, actor, at])
    assert (
        audit_hash(prev, pid, wid, kind, data, actor, at)
        == hashlib.sha256(payload.encode()).hexdigest()
    )
