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
from operator_core.db.actions import GENESIS_HASH
from operator_core.db.audit import audit_hash
from operator_core.db.encode import dumps

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
    assert dumps(value) == REFERENCE_ENCODER.encode(value)


def test_a_circular_value_is_refused_as_json_is() -> None:
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(loop)
    assert dumps({"b": [1, 2], "a": None}) == '{"a":null,"b":[1,2]}'  # still works after


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
    assert audit_hash(prev, proposal_id, workflow_id, event_type, data, actor, timestamp) == (
        hashlib.sha256(payload.encode()).hexdigest()
    )


@pytest.mark.sqlite_only(
    "reads the file with sqlite3 beside the engine; PostgreSQL's chain: test_pg_audit"
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


def test_a_null_in_a_not_null_column_still_fails(tmp_path: Path) -> None:
    from operator_core.db.rows import INSERT_PROPOSAL_SQL

    # status has a default: leaving it out would store 'proposed' instead of failing.
    columns = INSERT_PROPOSAL_SQL.split("(", 1)[1].split(")", 1)[0].replace("\n", " ")
    names = [c.strip() for c in columns.split(",")]
    values = tuple(None if column == "status" else "x" for column in names)
    conn = _fresh_schema(tmp_path / "x.db")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="status"):
            conn.execute(INSERT_PROPOSAL_SQL, values)
    finally:
        conn.close()
