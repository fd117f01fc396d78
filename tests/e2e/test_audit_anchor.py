"""The audit anchor end to end: the real CLI and a real runner process write a database and
its signed checkpoints; a test that knows the format then tampers with a raw SQLite
connection (triggers dropped, hashes recomputed, ``sqlite_sequence`` fixed, an older file
copied back) and ``operator audit verify`` must name what was done and where."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from operator_core.anchor.chain import event_hash

from tests.e2e.conftest import cli_env, run_cli, start_runner

Tamper = Callable[[sqlite3.Connection, Path], None]


def env_for(root: Path, **extra: str) -> dict[str, str]:
    return cli_env(
        root,
        OPERATOR_AUDIT_CHECKPOINT_DIR=str(root / "anchor"),
        OPERATOR_AUDIT_KEY_FILE=str(root / "audit.key"),
        **extra,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def backup(src: Path, dst: Path) -> None:
    """A consistent copy of a WAL database, as one file."""
    source = sqlite3.connect(src)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database written by the CLI and a runner process, with its checkpoints and key:
    three actions (approved, approved, rejected), an approved two-step workflow, all run;
    then one more proposal. ``older.db`` is the file as it was before the runner."""
    root = tmp_path_factory.mktemp("anchored")
    (root / "anchor").mkdir()
    db = root / "operator.db"
    env = env_for(root, OPERATOR_APPROVAL_MODE="on", OPERATOR_AUDIT_SECONDS="0.2")
    for _ in range(3):
        ok(run_cli(db, "propose", "ok", "--reason", "tidy", env=env))
    ok(
        run_cli(
            db,
            "propose-workflow",
            "wf",
            "--description",
            "d",
            "--step",
            "ok",
            "--step",
            "ok",
            env=env,
        )
    )
    ok(run_cli(db, "approve", "1", env=env))
    ok(run_cli(db, "approve", "2", env=env))
    ok(run_cli(db, "approve", "1", "--workflow", env=env))
    ok(run_cli(db, "reject", "3", "--reason", "not now", env=env))
    backup(db, root / "older.db")
    runner = start_runner(db, root / "runner.log", "--until-idle", env=env)
    assert runner.wait(timeout=60) == 0, (root / "runner.log").read_text()
    ok(run_cli(db, "propose", "ok", "--reason", "later", env=env))
    return root


@pytest.fixture
def case(base: Path, tmp_path: Path) -> Path:
    """A private copy of the base: database, checkpoints and key."""
    root = tmp_path / "case"
    root.mkdir()
    backup(base / "operator.db", root / "operator.db")
    shutil.copy(base / "older.db", root / "older.db")
    shutil.copytree(base / "anchor", root / "anchor")
    shutil.copy(base / "audit.key", root / "audit.key")
    (root / "audit.key").chmod(0o600)
    return root


def verify(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(root / "operator.db", "audit", "verify", *args, env=env_for(root))


def last_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT MAX(id) FROM action_audit_log").fetchone()[0])


def rehash(conn: sqlite3.Connection, start: int = 1) -> None:
    """Recompute every hash from event ``start`` on, as someone who knows the format."""
    row = conn.execute("SELECT hash FROM action_audit_log WHERE id < ? ORDER BY id DESC", (start,))
    found = row.fetchone()
    prev = found[0] if found else "0" * 64
    rows = conn.execute(
        "SELECT id, proposal_id, workflow_id, event_type, event_data, actor, timestamp "
        "FROM action_audit_log WHERE id >= ? ORDER BY id",
        (start,),
    ).fetchall()
    for id_, pid, wid, etype, data, actor, ts in rows:
        digest = event_hash(prev, pid, wid, etype, data, actor, ts)
        conn.execute(
            "UPDATE action_audit_log SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, id_)
        )
        prev = digest


def fix_sequence(conn: sqlite3.Connection) -> None:
    conn.execute(
        "UPDATE sqlite_sequence SET seq = (SELECT COALESCE(MAX(id), 0) FROM action_audit_log) "
        "WHERE name = 'action_audit_log'"
    )


def renumber(conn: sqlite3.Connection, start: int, by: int) -> None:
    """Shift the ids of events from ``start`` on by ``by`` (through a far range, so no two
    rows ever share an id)."""
    conn.execute("UPDATE action_audit_log SET id = id + 1000000 WHERE id >= ?", (start,))
    conn.execute("UPDATE action_audit_log SET id = id - 1000000 + ? WHERE id >= 1000000", (by,))


def edit_middle(conn: sqlite3.Connection, root: Path) -> None:
    conn.execute("UPDATE action_audit_log SET actor = 'mallory' WHERE id = 8")
    rehash(conn, 8)


def swap_two(conn: sqlite3.Connection, root: Path) -> None:
    a, b = (
        conn.execute(
            "SELECT proposal_id, workflow_id, event_type, event_data, actor, timestamp "
            "FROM action_audit_log WHERE id = ?",
            (i,),
        ).fetchone()
        for i in (9, 10)
    )
    sql = (
        "UPDATE action_audit_log SET proposal_id = ?, workflow_id = ?, event_type = ?, "
        "event_data = ?, actor = ?, timestamp = ? WHERE id = ?"
    )
    conn.execute(sql, (*b, 9))
    conn.execute(sql, (*a, 10))
    rehash(conn, 9)


def forged_approval_inside(conn: sqlite3.Connection, root: Path) -> None:
    ts = conn.execute("SELECT timestamp FROM action_audit_log WHERE id = 6").fetchone()[0]
    renumber(conn, 7, 1)
    conn.execute(
        "INSERT INTO action_audit_log (id, proposal_id, workflow_id, event_type, event_data, "
        "actor, timestamp, prev_hash, hash) VALUES (7, 3, NULL, 'approved', '{}', "
        "'mallory@box', ?, '', '')",
        (ts,),
    )
    rehash(conn, 7)
    fix_sequence(conn)


def forged_approval_appended(conn: sqlite3.Connection, root: Path) -> None:
    ts = conn.execute("SELECT timestamp FROM action_audit_log WHERE id = 6").fetchone()[0]
    ts = "2020" + ts[4:]  # dated before the checkpoints it comes after
    conn.execute(
        "INSERT INTO action_audit_log (proposal_id, workflow_id, event_type, event_data, "
        "actor, timestamp, prev_hash, hash) VALUES (3, NULL, 'approved', '{}', "
        "'mallory@box', ?, '', '')",
        (ts,),
    )
    rehash(conn, last_id(conn))


def delete_tail(n: int | None) -> Tamper:
    def tamper(conn: sqlite3.Connection, root: Path) -> None:
        keep = 0 if n is None else last_id(conn) - n
        conn.execute("DELETE FROM action_audit_log WHERE id > ?", (keep,))
        fix_sequence(conn)

    return tamper


def delete_middle_renumbered(conn: sqlite3.Connection, root: Path) -> None:
    conn.execute("DELETE FROM action_audit_log WHERE id BETWEEN 10 AND 12")
    renumber(conn, 13, -3)
    rehash(conn, 10)
    fix_sequence(conn)


def older_copy(conn: sqlite3.Connection, root: Path) -> None:
    """Done on the file, not through ``conn`` (the test closes it first)."""


def executed_parameters(conn: sqlite3.Connection, root: Path) -> None:
    conn.execute("UPDATE action_proposals SET parameters = '{\"seconds\": 9}' WHERE id = 1")


def rejected_marked_approved(conn: sqlite3.Connection, root: Path) -> None:
    conn.execute(
        "UPDATE action_proposals SET rejected_at = NULL, rejected_by = NULL, "
        "rejected_identity = NULL, approved_at = proposed_at, approved_by = 'boss', "
        "status = 'validated', cancelled_at = NULL WHERE id = 3"
    )


CASES: list[tuple[str, Tamper, set[str], str]] = [
    ("an event edited, hashes recomputed", edit_middle, {"rewritten"}, "events "),
    ("two events swapped, hashes recomputed", swap_two, {"rewritten"}, "events "),
    ("a forged approval inserted", forged_approval_inside, {"rewritten"}, "events "),
    ("a forged approval appended, backdated", forged_approval_appended, {"backdated"}, "event "),
    ("the last event deleted", delete_tail(1), {"rollback"}, "are missing: checkpoint"),
    ("the last five deleted", delete_tail(5), {"rollback"}, "are missing: checkpoint"),
    ("every event deleted", delete_tail(None), {"rollback"}, "events 1.."),
    ("middle events deleted, renumbered", delete_middle_renumbered, {"rewritten"}, "events "),
    ("an older copy of the database", older_copy, {"rollback"}, "are missing: checkpoint"),
    ("an executed action's parameters", executed_parameters, {"parameters_changed"}, "action 1"),
    ("a rejected action marked approved", rejected_marked_approved, set(), "action 3"),
]


def test_a_clean_database_verifies_and_says_how_far_the_anchor_reaches(case: Path) -> None:
    out = ok(verify(case))
    conn = sqlite3.connect(case / "operator.db")
    try:
        head = last_id(conn)
    finally:
        conn.close()
    assert "audit log OK" in out and f"anchored to event {head} " in out, out
    report = json.loads(ok(verify(case, "--json")))
    assert report["ok"] is True and report["anchored_to"] == head and report["findings"] == []
    # The events carry the parameters' hash that the cross-check compares.
    conn = sqlite3.connect(case / "operator.db")
    try:
        kinds = {
            kind
            for (kind,) in conn.execute(
                "SELECT event_type FROM action_audit_log "
                "WHERE event_data LIKE '%parameters_sha256%'"
            )
        }
    finally:
        conn.close()
    assert {"approved", "workflow_approved", "execution_started"} <= kinds


@pytest.mark.parametrize(("what", "tamper", "kinds", "where"), CASES, ids=[c[0] for c in CASES])
def test_tampering_is_named(
    case: Path, what: str, tamper: Tamper, kinds: set[str], where: str
) -> None:
    db = case / "operator.db"
    if tamper is older_copy:
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copy(case / "older.db", db)
    else:
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            for name in ("action_audit_log_no_update", "action_audit_log_no_delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            conn.execute("BEGIN")
            tamper(conn, case)
            conn.execute("COMMIT")
        finally:
            conn.close()
    text = verify(case)
    assert text.returncode != 0, text.stdout
    assert "Traceback" not in text.stderr + text.stdout
    assert "audit log TAMPERED" in text.stderr
    report = json.loads(verify(case, "--json").stdout)
    assert report["ok"] is False
    found = {f["kind"] for f in report["findings"]}
    assert kinds <= found, (what, report["findings"])
    assert any(where in f["message"] for f in report["findings"]), (what, report["findings"])


def test_an_export_verifies_elsewhere_without_the_database(case: Path, tmp_path: Path) -> None:
    env = env_for(case)
    db = case / "operator.db"
    ledger = case / "ledger.jsonl"
    said = ok(run_cli(db, "audit", "export", "--from", "3", str(ledger), env=env))
    assert "exported events 3.." in said
    vkey = ok(run_cli(db, "audit", "key", env=env)).splitlines()[0]

    # Another machine: only the ledger and the public key.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = elsewhere / "ledger.jsonl"
    shutil.copy(ledger, copy)
    other_env = cli_env(elsewhere, OPERATOR_AUDIT_KEY_FILE=str(elsewhere / "none.key"))
    missing_db = elsewhere / "no.db"
    checked = run_cli(
        missing_db, "audit", "verify", "--ledger", str(copy), "--key", vkey, env=other_env
    )
    assert "audit log OK" in ok(checked) and "anchored to event" in checked.stdout
    assert not missing_db.exists()

    lines = copy.read_text().splitlines()
    i = next(n for n, line in enumerate(lines) if '"event"' in line)
    value: dict[str, Any] = json.loads(lines[i])
    value["event"][5] = "mallory@box"
    lines[i] = json.dumps(value)
    copy.write_text("\n".join(lines) + "\n")
    tampered = run_cli(
        missing_db, "audit", "verify", "--ledger", str(copy), "--key", vkey, env=other_env
    )
    assert tampered.returncode != 0 and "TAMPERED" in tampered.stderr
