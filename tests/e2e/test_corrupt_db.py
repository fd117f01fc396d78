"""A damaged database: every command that writes refuses it before writing anything (the
whole file is checked at open with PRAGMA quick_check), and the kill switch still stops
execution as long as the safety and audit tables can be written. Real files corrupted by
overwriting bytes, real CLI processes."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_one_line_error, run_cli, seed

pytestmark = pytest.mark.sqlite_only("damages the file (PRAGMA quick_check)")

PAGE = 2048  # ActionDB's page size (db/actions.py PAGE_SIZE)

WRITERS = [
    ["propose", "ok", "--reason", "r"],
    ["propose-workflow", "wf", "--description", "d", "--step", "ok"],
    ["ticket", "open", "t"],
    ["approve", "1400"],
    ["approve", "5"],
    ["reject", "6", "--reason", "no"],
    ["cancel", "7"],
    ["resume", "--yes"],
    ["run", "--until-idle"],
]


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 actions awaiting approval: action_proposals spans a few hundred pages."""
    db = tmp_path_factory.mktemp("healthy") / "operator.db"

    async def fill(ex):  # type: ignore[no-untyped-def]
        for i in range(1500):
            await ex.propose_action("guarded", {}, f"reason {i} " + "x" * 200)

    seed(db, fill)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db


def _copy(healthy: Path, tmp_path: Path) -> Path:
    db = tmp_path / "operator.db"
    shutil.copy(healthy, db)
    return db


def _leaf_pages(db: Path, table: str) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [
            r[0]
            for r in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
                (table,),
            )
        ]
    finally:
        conn.close()


def _smash(db: Path, pages: list[int]) -> None:
    with db.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * PAGE + 8)
            f.write(b"\xff" * 200)


def _proposals_damaged(healthy: Path, tmp_path: Path) -> Path:
    """Three leaf pages early in action_proposals overwritten: the newest actions, the
    safety state and the audit log's tail still read fine."""
    db = _copy(healthy, tmp_path)
    leaves = _leaf_pages(db, "action_proposals")
    _smash(db, leaves[len(leaves) // 4 : len(leaves) // 4 + 3])
    return db


def _digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


def _side_files(db: Path) -> list[str]:
    return sorted(p.name for p in db.parent.glob(db.name + "-*"))


@pytest.mark.parametrize("args", WRITERS, ids=lambda a: " ".join(a))
def test_a_writer_refuses_a_partly_corrupt_database_and_changes_nothing(
    healthy: Path, tmp_path: Path, args: list[str]
) -> None:
    db = _proposals_damaged(healthy, tmp_path)
    digest = _digest(db)
    line = assert_one_line_error(run_cli(db, *args))
    assert "is corrupt" in line and "nothing was written" in line
    assert _digest(db) == digest


@pytest.mark.parametrize("garbage", ["header", "whole file"])
@pytest.mark.parametrize(
    "args",
    [*WRITERS, ["kill-switch", "--yes"], ["status"], ["actions", "list"]],
    ids=lambda a: " ".join(a),
)
def test_a_file_that_is_garbage_is_refused_untouched(
    healthy: Path, tmp_path: Path, garbage: str, args: list[str]
) -> None:
    db = _copy(healthy, tmp_path)
    with db.open("r+b") as f:
        f.write(os.urandom(100 if garbage == "header" else db.stat().st_size))
    digest = _digest(db)
    line = assert_one_line_error(run_cli(db, *args))
    assert "corrupt or not an Operator database" in line
    assert _digest(db) == digest and _side_files(db) == []


def test_the_kill_switch_still_stops_execution_on_a_partly_corrupt_database(
    healthy: Path, tmp_path: Path
) -> None:
    db = _proposals_damaged(healthy, tmp_path)
    line = assert_one_line_error(run_cli(db, "kill-switch", "--yes"))
    assert "KILL SWITCH pulled: safety mode OBSERVE" in line
    assert "pending actions were not cancelled" in line
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT mode FROM safety_state").fetchone()[0] == "observe"
        event = conn.execute(
            "SELECT event_type, event_data FROM action_audit_log ORDER BY id DESC LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    assert event[0] == "safety_mode_changed" and "kill switch" in event[1]
    # And nothing runs: a runner finds the database refused, never claims work from it.
    assert run_cli(db, "run", "--until-idle").returncode != 0


def test_the_full_kill_switch_runs_when_only_the_audit_history_is_damaged(
    healthy: Path, tmp_path: Path
) -> None:
    db = _copy(healthy, tmp_path)
    leaves = _leaf_pages(db, "action_audit_log")
    _smash(db, leaves[2:4])
    result = run_cli(db, "kill-switch", "--yes")
    assert result.returncode == 0, result.stderr
    assert "cancelled 1500 action(s)" in result.stdout


def test_an_sqlite_database_of_something_else_is_never_written(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    digest = _digest(db)
    for args in (["status"], ["propose", "ok", "--reason", "r"], ["kill-switch", "--yes"]):
        line = assert_one_line_error(run_cli(db, *args))
        assert "not an Operator database" in line
    assert _digest(db) == digest and _side_files(db) == []


async def test_the_engine_refuses_a_dashboards_first_write_on_a_damaged_file(
    healthy: Path, tmp_path: Path
) -> None:
    """The check is the engine's, not the CLI's: the dashboard and any API caller get it."""
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry
    from operator_core.db.health import CorruptDatabaseError

    from tests.support.subjects import TestSubject

    db = _proposals_damaged(healthy, tmp_path)
    digest = _digest(db)
    ex = ActionExecutor(db, ActionRegistry.from_subject(TestSubject()))
    async with ex:
        assert (await ex.require_proposal(1400)).awaiting_approval  # reads still work
        with pytest.raises(CorruptDatabaseError, match="nothing was written"):
            await ex.approve_proposal(1400, "alice@host")
        with pytest.raises(CorruptDatabaseError, match="nothing was written"):
            await ex.propose_action("ok", {}, "r")
    assert _digest(db) == digest
