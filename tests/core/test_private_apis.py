"""The private APIs of dependencies the engine's kept shortcuts use, each in one module: when
a new version moves one, these fail with what to update (the upper bounds in pyproject.toml
keep such a version out until then)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
from hypothesis import given
from hypothesis import strategies as st
from operator_core.db import encode, rows
from operator_core.db.connection import raw_connection
from operator_core.model.types import ActionRecord, AuditEvent
from pydantic import BaseModel


async def test_aiosqlite_still_has_the_connection_and_the_worker_call(tmp_path: Path) -> None:
    conn = await aiosqlite.connect(str(tmp_path / "x.db"))
    try:
        raw = getattr(conn, "_conn", None)
        assert isinstance(raw, sqlite3.Connection), (
            "aiosqlite's private Connection._conn moved: update operator_core/db/connection.py"
        )
        assert raw_connection(conn) is raw
        execute = getattr(conn, "_execute", None)
        assert execute is not None and asyncio.iscoroutinefunction(execute), (
            "aiosqlite's private Connection._execute moved: update operator_core/db/connection.py"
        )

        def on_worker(c: sqlite3.Connection, value: int) -> int:
            return int(c.execute("SELECT ?", (value,)).fetchone()[0])

        assert await execute(on_worker, raw, 7) == 7, (
            "aiosqlite's private Connection._execute(fn, *args) changed: update "
            "operator_core/db/connection.py"
        )
    finally:
        await conn.close()


def test_pydantic_still_has_the_four_model_slots() -> None:
    for name in rows.SLOT_NAMES:
        slot = BaseModel.__dict__.get(name)
        assert slot is not None and hasattr(slot, "__set__"), (
            f"pydantic's BaseModel slot {name} moved: update operator_core/db/rows.py"
        )
    for name in ("__pydantic_post_init__", "__pydantic_root_model__"):
        assert hasattr(ActionRecord, name), (
            f"pydantic's {name} moved: update operator_core/db/rows.py"
        )


WHEN = st.none() | st.datetimes(timezones=st.just(UTC))


@given(
    st.integers(min_value=1),
    st.integers(min_value=1),
    st.integers(min_value=1, max_value=99),
    WHEN,
    st.none() | st.booleans(),
    st.none() | st.text(max_size=8),
    st.none() | st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
)
def test_a_trusted_model_is_the_model_model_construct_builds(
    rid: int,
    pid: int,
    attempt: int,
    completed: datetime | None,
    success: bool | None,
    error: str | None,
    data: dict[str, Any] | None,
) -> None:
    values = dict(
        id=rid,
        proposal_id=pid,
        attempt=attempt,
        started_at=datetime(2026, 11, 22, tzinfo=UTC),
        completed_at=completed,
        success=success,
        error_message=error,
        result_data=data,
        host=None,
        pid=None,
        pgid=None,
        process_start=None,
    )
    built = rows.trusted(ActionRecord, dict(values))
    plain = ActionRecord.model_construct(**values)
    assert built == plain
    assert built.__dict__ == plain.__dict__
    assert built.model_fields_set == plain.model_fields_set
    assert built.__pydantic_extra__ == plain.__pydantic_extra__
    assert built.__pydantic_private__ == plain.__pydantic_private__
    assert built.model_dump() == plain.model_dump()


def test_a_trusted_audit_event_is_the_one_model_construct_builds() -> None:
    values = dict(
        id=1,
        proposal_id=None,
        workflow_id=2,
        event_type="kill_switch",
        event_data={"a": 1},
        actor="ops",
        timestamp=datetime(2026, 11, 22, tzinfo=UTC),
        prev_hash="0" * 64,
        hash="f" * 64,
    )
    built = rows.trusted(AuditEvent, dict(values))
    assert built == AuditEvent.model_construct(**values)
    assert built.model_dump_json() == AuditEvent.model_construct(**values).model_dump_json()


def test_cpython_still_has_the_c_json_encoder() -> None:
    assert json.encoder.c_make_encoder is not None and encode._C_ENCODE is not None, (
        "CPython's private json.encoder.c_make_encoder is gone: operator_core/db/encode.py "
        "falls back to the plain encoder (slower); update or remove its shortcut"
    )
    value = {"b": [1, 2.5, None, True], "a": "é", "c": {"z": datetime(2026, 1, 1, tzinfo=UTC)}}
    assert encode.dumps(value) == encode.PLAIN.encode(value)
