"""Shortcuts on the engine's hot path, each held to the plain path it stands in for: the
statements that leave NULL columns unbound, the stored "now" computed once per value, the
system clock's text, and models built from rows whose keys were checked once."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from operator_core.actions.registry import ActionDefinition
from operator_core.clock import Clock, FrozenClock, to_db
from operator_core.db.rows import trusted
from operator_core.model.types import ActionRecord
from operator_core.runner import Runner
from operator_core.subjects.base import ExecutionContext

from tests.support.subjects import TestSubject


class QuietSubject(TestSubject):
    """TestSubject plus ``quiet``, which succeeds with no result data."""

    def action_definitions(self) -> list[ActionDefinition]:
        return [
            *super().action_definitions(),
            ActionDefinition(name="quiet", description="succeeds, says nothing"),
        ]

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any] | None:
        if action_name == "quiet":
            return None
        return await super().execute(action_name, parameters, context)


@pytest.mark.sqlite_only("compares two SQLite files read with sqlite3")
async def test_runner_batches_store_every_attempt_and_event_as_the_plain_path_does(
    make_executor: Any, db_path: Path
) -> None:
    """A batch where no attempt returned data is closed by a statement without bound NULLs;
    a batch mixing data and none, or workflow steps and plain actions, by the full one. Both
    store the same rows, and the events keep their workflow (or none) and one chain."""
    ex = await make_executor(subject=QuietSubject())
    wf = await ex.propose_workflow(
        "wf",
        "two quiet steps",
        [
            {"action_name": "quiet", "reason": "step 1"},
            {"action_name": "quiet", "reason": "step 2"},
        ],
    )
    plain = [
        (await ex.propose_action(name, {}, reason=f"plain {i}")).id
        for i, name in enumerate(["quiet"] * 7 + ["ok", "quiet", "ok", "quiet"])
    ]
    stats = await Runner(ex, concurrency=4, poll_interval=0.05).run(until_idle=True)
    assert stats.completed == len(plain) + 2

    conn = sqlite3.connect(db_path)
    try:
        records = {
            pid: (success, error, data)
            for pid, success, error, data in conn.execute(
                "SELECT proposal_id, success, error_message, result_data FROM action_records"
            )
        }
        steps = [
            pid
            for (pid,) in conn.execute(
                "SELECT id FROM action_proposals WHERE workflow_id = ? ORDER BY id", (wf,)
            )
        ]
        events = conn.execute(
            "SELECT proposal_id, workflow_id, event_type FROM action_audit_log "
            "WHERE event_type IN ('execution_started', 'completed')"
        ).fetchall()
    finally:
        conn.close()
    names = ["quiet"] * 7 + ["ok", "quiet", "ok", "quiet"]
    for pid, name in zip(plain, names, strict=True):
        expected = '{"attempt":1,"ok":true}' if name == "ok" else None
        assert records[pid] == (1, None, expected), pid
    for pid in steps:
        assert records[pid] == (1, None, None)
    assert sorted(events) == sorted(
        [(pid, None, kind) for pid in plain for kind in ("execution_started", "completed")]
        + [(pid, wf, kind) for pid in steps for kind in ("execution_started", "completed")]
    )
    ok, count, _ = await ex.db.verify_audit_chain()
    assert ok and count > 0


POOL = [
    datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 22, 8, 0, 0, 1, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 11, 22, 19, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
]


@given(st.lists(st.sampled_from(range(len(POOL))), max_size=20))
def test_stored_text_is_right_whatever_was_stored_before(order: list[int]) -> None:
    """The same object in a row (a cycle's "now") and different ones interleaved, UTC or
    not, each give the text of their own instant."""
    for i in order:
        value = POOL[i]
        assert to_db(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def zone() -> Iterator[Any]:
    old = os.environ.get("TZ")

    def use(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield use
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_a_naive_time_is_stored_in_the_local_zone_of_the_moment(zone: Any) -> None:
    naive = datetime(2026, 11, 22, 12, 0)
    zone("Asia/Tokyo")
    assert to_db(naive) == "2026-11-22T03:00:00.000000Z"
    zone("UTC")
    assert to_db(naive) == "2026-11-22T12:00:00.000000Z"


def test_a_clock_gives_its_own_time_as_text() -> None:
    before = datetime.now(UTC)
    text = Clock().now_text()
    after = datetime.now(UTC)
    assert to_db(before) <= text <= to_db(after)  # type: ignore[operator]

    class Late(Clock):
        def now(self) -> datetime:
            return datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert Late().now_text() == "2030-01-02T03:04:05.000000Z"
    assert FrozenClock(datetime(2031, 6, 1, tzinfo=UTC)).now_text() == (
        "2031-06-01T00:00:00.000000Z"
    )


def test_a_row_shape_is_trusted_only_after_it_was_checked() -> None:
    """A caller names the shape its rows always have. Values that do not name every field
    go through model_construct (defaults filled in) and leave the shape unchecked, however
    often they come; once the shape is checked, rows of it are taken as they are."""
    shape = tuple(reversed(ActionRecord.model_fields))  # a shape no engine code uses
    now = datetime(2026, 11, 22, tzinfo=UTC)
    partial = {"id": 1, "proposal_id": 2, "attempt": 1, "started_at": now}
    for _ in range(2):
        record = trusted(ActionRecord, dict(partial), shape)
        assert (record.result_data, record.success, record.completed_at) == (None, None, None)
    full = {name: None for name in shape} | partial
    full = {name: full[name] for name in shape}
    first = trusted(ActionRecord, dict(full), shape)
    again = trusted(ActionRecord, dict(full), shape)
    assert first == again == ActionRecord.model_construct(**full)
    assert again.model_fields_set == set(ActionRecord.model_fields)


async def test_a_claimed_action_is_the_stored_row_read_whole(
    make_executor: Any, db_path: Path
) -> None:
    """The claim returns only the columns the model is built from: every field of the
    claimed action is what a read of the whole row gives."""
    ex = await make_executor()
    ticket = await ex.open_ticket("disk full", "node 3")
    p = await ex.propose_action(
        "ok",
        {"seconds": 0.0},
        "free space",
        ticket_id=ticket.id,
        proposed_by="bot@ops",
        scheduled_at=datetime.now(UTC) - timedelta(seconds=5),
        max_retries=5,
        expires_in=600,
    )
    claims = await ex.db.claim_ready("runner-a", 4, 30)
    assert [c.proposal.id for c in claims] == [p.id]
    stored = await ex.db.get_proposal(p.id)
    assert claims[0].proposal == stored
    assert (stored.ticket_id, stored.parameters, stored.max_retries, stored.claimed_by) == (
        ticket.id,
        {"seconds": 0.0},
        5,
        "runner-a",
    )
