"""The text the engine stores: timestamps, JSON and the audit chain's hashes.

Each has a fast path; these tests hold it to the plain definition it replaces.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from operator_core.clock import from_db, to_db
from operator_core.db.actions import GENESIS_HASH, _audit_hash, _json

REFERENCE_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)


@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES)
)
def test_stored_timestamps_are_fixed_width_utc_with_microseconds(value: datetime) -> None:
    text = to_db(value)
    assert text == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(text) == 27
    assert from_db(text) == value


def test_a_whole_second_keeps_its_six_zero_digits() -> None:
    assert to_db(datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)) == "2026-11-21T08:00:00.000000Z"
    assert to_db(datetime(2026, 11, 21, 8, 0, 0, 1, tzinfo=UTC)) == "2026-11-21T08:00:00.000001Z"


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.datetimes(timezones=st.just(UTC)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(JSON_VALUES)
def test_json_is_the_sorted_compact_ascii_encoding(value: Any) -> None:
    assert _json(value) == REFERENCE_ENCODER.encode(value)


def test_a_circular_value_is_refused_as_json_is() -> None:
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    with pytest.raises(ValueError, match="Circular reference"):
        _json(loop)
    assert _json({"b": [1, 2], "a": None}) == '{"a":null,"b":[1,2]}'  # still works after


@given(
    st.text(),
    st.none() | st.integers(min_value=1),
    st.none() | st.integers(min_value=1),
    st.text(),
    st.text(),
    st.text(),
    st.text(),
)
def test_audit_hash_is_sha256_of_the_fields_as_a_json_array(
    prev: str,
    proposal_id: int | None,
    workflow_id: int | None,
    event_type: str,
    data: str,
    actor: str,
    timestamp: str,
) -> None:
    payload = REFERENCE_ENCODER.encode(
        [prev, proposal_id, workflow_id, event_type, data, actor, timestamp]
    )
    assert _audit_hash(prev, proposal_id, workflow_id, event_type, data, actor, timestamp) == (
        hashlib.sha256(payload.encode()).hexdigest()
    )


async def test_proposals_from_two_connections_keep_one_unbroken_chain(
    make_executor: Any, db_path: Path
) -> None:
    """Each proposal reads the chain's head in its own transaction, so events appended by
    another connection in between are chained onto, never forked from."""
    first = await make_executor()
    second = await make_executor()
    for i in range(6):
        await first.propose_action("ok", {}, reason=f"first {i}")
        await second.propose_action("ok", {}, reason=f"second {i}")
        if i == 3:
            await second.kill_switch("tester")
            await first.resume("tester")
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT prev_hash, hash FROM action_audit_log ORDER BY id").fetchall()
    proposed = conn.execute(
        "SELECT COUNT(*) FROM action_audit_log WHERE event_type = 'proposed'"
    ).fetchone()[0]
    conn.close()
    assert proposed == 12 and len(rows) > 12
    assert rows[0][0] == GENESIS_HASH
    assert all(row[0] == before[1] for before, row in zip(rows, rows[1:], strict=False))
    assert (await first.db.verify_audit_chain())[0]


# A proposal row names only the columns it gives a value (binding None is slow in Python
# 3.11's sqlite3); it must store exactly what binding every column stores.
_ROW_VALUES = {
    "ticket_id": st.none() | st.just(1),
    "validated_at": st.none() | st.just("2026-11-22T10:00:00.000001Z"),
    "cancelled_at": st.none() | st.just("2026-11-22T10:00:01.000000Z"),
    "cancel_reason": st.none() | st.text(max_size=5),
    "approved_at": st.none() | st.just("2026-11-22T10:00:02.000000Z"),
    "approved_by": st.none() | st.just("ops@host"),
    "rejected_at": st.none() | st.just("2026-11-22T10:00:03.000000Z"),
    "rejected_by": st.none() | st.just("ops@host"),
    "rejection_reason": st.none() | st.text(max_size=5),
    "expires_at": st.none() | st.just("2026-11-22T11:00:00.000000Z"),
    "workflow_id": st.none() | st.just(1),
    "depends_on_proposal_id": st.none() | st.just(1),
    "scheduled_at": st.none() | st.just("2026-11-22T10:05:00.000000Z"),
    "next_retry_at": st.none() | st.just("2026-11-22T10:06:00.000000Z"),
    "last_error": st.none() | st.text(max_size=5),
}


def _fresh_schema(path: Path) -> sqlite3.Connection:
    from operator_core.db.schema import migrate

    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn)
    conn.execute("INSERT INTO tickets (title) VALUES ('t')")
    conn.execute("INSERT INTO workflows (name) VALUES ('w')")
    conn.execute(
        "INSERT INTO action_proposals (action_name, parameters, reason, proposed_at)"
        " VALUES ('seed', '{}', 'seed', '2026-11-22T09:00:00.000000Z')"
    )
    return conn


@given(st.fixed_dictionaries(_ROW_VALUES))
def test_a_proposal_row_leaves_out_null_columns_and_stores_the_same(
    tmp_path_factory: pytest.TempPathFactory, optional: dict[str, Any]
) -> None:
    from operator_core.db.actions import _PROPOSAL_INSERT_COLUMNS, _proposal_insert

    required = {
        "action_name": "restart",
        "action_type": "subject",
        "parameters": '{"a":1}',
        "reason": "why",
        "status": "validated",
        "proposed_at": "2026-11-22T10:00:00.000001Z",
        "proposed_by": "agent",
        "requires_approval": 1,
        "execution_order": 0,
        "delay_seconds": 0.0,
        "retry_count": 0,
        "max_retries": 3,
        "created_at": "2026-11-22T10:00:00.000001Z",
        "updated_at": "2026-11-22T10:00:00.000001Z",
        "proposed_identity": "agent@host",
    }
    values = tuple({**required, **optional}[column] for column in _PROPOSAL_INSERT_COLUMNS)
    conn = _fresh_schema(tmp_path_factory.mktemp("rows") / "x.db")
    try:
        every = (
            f"INSERT INTO action_proposals ({', '.join(_PROPOSAL_INSERT_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(values))})"
        )
        sql, bound = _proposal_insert(values)
        assert None not in bound
        assert len(bound) == len(required) + sum(v is not None for v in optional.values())
        first = conn.execute(every, values).lastrowid
        second = conn.execute(sql, bound).lastrowid
        rows = conn.execute(
            "SELECT * FROM action_proposals WHERE id IN (?, ?) ORDER BY id", (first, second)
        ).fetchall()
        assert rows[0][1:] == rows[1][1:]
    finally:
        conn.close()


def test_a_null_in_a_not_null_column_still_fails(tmp_path: Path) -> None:
    from operator_core.db.actions import _PROPOSAL_INSERT_COLUMNS, _proposal_insert

    # status has a default: leaving it out would store 'proposed' instead of failing.
    values = tuple(None if column == "status" else "x" for column in _PROPOSAL_INSERT_COLUMNS)
    conn = _fresh_schema(tmp_path / "x.db")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="status"):
            conn.execute(*_proposal_insert(values))
    finally:
        conn.close()
