"""The publisher an open database runs: configured from the environment, with its origin,
never fatal, and what the dashboard's header reads from it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from operator_core.anchor import runtime
from operator_core.anchor.sinks import CHECKPOINT_FILE, read_file
from operator_core.db.actions import ActionDB
from operator_core.db.records import AuditEntry


@pytest.fixture
def anchor_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "anchor"
    directory.mkdir()
    monkeypatch.setenv("OPERATOR_AUDIT_CHECKPOINT_DIR", str(directory))
    monkeypatch.setenv("OPERATOR_AUDIT_KEY_FILE", str(tmp_path / "audit.key"))
    monkeypatch.delenv("OPERATOR_AUDIT_KEY", raising=False)
    return directory


async def append_events(path: Path, n: int, kind: str = "note") -> ActionDB:
    db = ActionDB(path)
    await db.open()
    for _ in range(n):
        await db.append_audit_event(AuditEntry(kind, {}, "tester"))
    return db


def test_closing_publishes_the_head_with_the_databases_origin(
    tmp_path: Path, anchor_dir: Path
) -> None:
    async def go() -> tuple[str | None, int]:
        db = await append_events(tmp_path / "op.db", 3)
        origin = db.audit_publisher.origin if db.audit_publisher else None
        await db.close()
        return origin, 3

    origin, n = asyncio.run(go())
    assert origin is not None
    found = read_file(anchor_dir / CHECKPOINT_FILE).checkpoints
    assert found, "closing published no checkpoint"
    assert found[-1].checkpoint.origin == origin and origin.startswith("operator/")
    assert found[-1].checkpoint.size >= n


def test_an_approval_is_checkpointed_at_once(tmp_path: Path, anchor_dir: Path) -> None:
    async def go() -> int:
        db = await append_events(tmp_path / "op.db", 1, kind="approved")
        assert db.audit_publisher is not None
        for _ in range(100):
            if db.audit_publisher.status().last_success_at is not None:
                break
            await asyncio.sleep(0.02)
        size = db.audit_publisher.status().last_size
        await db.close()
        return size

    assert asyncio.run(go()) >= 1


def test_a_setting_that_cannot_work_is_shown_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPERATOR_AUDIT_CHECKPOINT_DIR", str(tmp_path / "missing"))
    monkeypatch.setenv("OPERATOR_AUDIT_KEY_FILE", str(tmp_path / "audit.key"))

    async def go() -> runtime.AnchorStatus | None:
        db = await append_events(tmp_path / "op.db", 2)
        status = runtime.anchor_status(db.audit_publisher)
        await db.close()
        return status

    status = asyncio.run(go())
    assert status is not None and status.failing
    assert status.error is not None and "is not a directory" in status.error


def test_off_means_no_publisher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPERATOR_AUDIT_CHECKPOINT_DIR", "off")
    monkeypatch.delenv("OPERATOR_AUDIT_SYSLOG", raising=False)
    monkeypatch.delenv("OPERATOR_AUDIT_WEBHOOK", raising=False)

    async def go() -> None:
        db = await append_events(tmp_path / "op.db", 1)
        assert db.audit_publisher is None
        assert runtime.anchor_status(db.audit_publisher) is None
        await db.close()

    asyncio.run(go())


def test_the_header_reads_the_newest_checkpoint_any_process_wrote(
    tmp_path: Path, anchor_dir: Path
) -> None:
    async def go() -> None:
        writer = await append_events(tmp_path / "op.db", 2)
        await writer.close()
        reader = ActionDB(tmp_path / "op.db")
        await reader.open()
        assert reader.audit_publisher is None, "a reader loads the signing code at once"
        reader.start_audit_publisher()
        status = runtime.anchor_status(reader.audit_publisher)
        await reader.close()
        assert status is not None and not status.failing
        assert status.last_at is not None and status.size >= 2

    asyncio.run(go())


def test_only_a_process_that_appends_loads_the_signing_code(
    tmp_path: Path, anchor_dir: Path
) -> None:
    """A read command starts as fast as before checkpoints existed: the publisher (and the
    cryptography it imports) starts with the first write that appends an event."""
    script = """
import asyncio, sys
from pathlib import Path
from operator_core.db.actions import ActionDB
from operator_core.db.records import AuditEntry

async def main(path):
    db = ActionDB(Path(path))
    await db.open()
    await db.list_audit_events(limit=5)
    print("after read", "operator_core.anchor.runtime" in sys.modules, db.audit_publisher)
    await db.append_audit_event(AuditEntry("note", {}, "tester"))
    print("after append", "operator_core.anchor.runtime" in sys.modules,
          db.audit_publisher is not None)
    await db.close()

asyncio.run(main(sys.argv[1]))
"""
    path = tmp_path / "op.db"

    async def seed() -> None:  # an existing database, one event checkpointed
        await (await append_events(path, 1)).close()

    asyncio.run(seed())
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["after read False None", "after append True True"], out
    assert read_file(anchor_dir / CHECKPOINT_FILE).checkpoints[-1].checkpoint.size == 2
