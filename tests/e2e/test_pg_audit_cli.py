"""``operator audit`` on PostgreSQL: the same tampering, done by the tables' owner behind
the engine's back (triggers off), gives the same findings as on SQLite."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db.actions import ActionDB
from operator_core.db.pg.store import PgActionDB
from operator_core.db.url import NOWHERE
from operator_core.subjects.demo import DemoSubject

from tests.anchor.chain import unlock
from tests.e2e.conftest import cli_env

ACTIONS = 6

# What a tamperer does, the same SQL on both engines (the audit log's events 1..n).
TAMPERING = {
    "edit": "UPDATE action_audit_log SET actor = 'mallory' WHERE id = 4",
    "delete_tail": "DELETE FROM action_audit_log WHERE id > (SELECT MAX(id) - 2 FROM "
    "action_audit_log AS a)",
    "delete_middle": "DELETE FROM action_audit_log WHERE id = 5",
}
# Two ways for PostgreSQL's owner to get past the append-only triggers.
BYPASS = {
    "disable_trigger": (
        "ALTER TABLE action_audit_log DISABLE TRIGGER ALL",
        "ALTER TABLE action_audit_log ENABLE TRIGGER ALL",
    ),
    "replica_role": ("SET session_replication_role = replica", "RESET session_replication_role"),
}


async def _seed(ex: ActionExecutor) -> None:
    async with ex:
        for i in range(ACTIONS):
            action = await ex.propose_action("check_health", {}, f"round {i}")
            if i % 3 == 0:
                assert action.id is not None
                await ex.cancel_proposal(action.id, "tester", "not needed")
    assert ex.registry.subject is not None
    await ex.registry.subject.aclose()


def _executor(db: ActionDB, path: Path = NOWHERE) -> ActionExecutor:
    registry = ActionRegistry.from_subject(DemoSubject())
    return ActionExecutor(path, registry, approval_mode=False, db=db)


def _verify(tmp_path: Path, target: str) -> tuple[int, dict[str, object], str]:
    # A state directory of its own: no signing key, no checkpoint file (not anchored).
    env = cli_env(tmp_path / "verifier")
    done = subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", target, "audit", "verify", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, json.loads(done.stdout), done.stderr


def _sqlite(tmp_path: Path, tamper: str | None) -> tuple[int, dict[str, object], str]:
    path = tmp_path / "ops.db"
    asyncio.run(_seed(_executor(ActionDB(path), path)))
    if tamper is not None:
        conn = sqlite3.connect(path, isolation_level=None)
        unlock(conn)
        conn.execute(TAMPERING[tamper])
        conn.close()
    return _verify(tmp_path, str(path))


def _postgres(
    tmp_path: Path, url: str, tamper: str | None, bypass: str = "disable_trigger"
) -> tuple[int, dict[str, object], str]:
    asyncio.run(_seed(_executor(PgActionDB(url))))
    if tamper is not None:
        off, on = BYPASS[bypass]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(off)  # type: ignore[arg-type]
            conn.execute(TAMPERING[tamper])  # type: ignore[arg-type]
            conn.execute(on)  # type: ignore[arg-type]
    return _verify(tmp_path, url)


def test_a_clean_log_verifies_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    code, report, err = _postgres(tmp_path, pg_url, None)
    assert code == 0, err
    assert report["ok"] is True and report["findings"] == []
    with psycopg.connect(pg_url) as conn:
        types = [r[0] for r in conn.execute("SELECT event_type FROM action_audit_log ORDER BY id")]
    assert types.count("cancelled") == ACTIONS // 3
    assert report["events"] == report["head_id"] == len(types) > ACTIONS


@pytest.mark.parametrize("bypass", sorted(BYPASS))
@pytest.mark.parametrize("tamper", sorted(TAMPERING))
def test_tampering_is_found_as_on_sqlite(
    tmp_path: Path, pg_url: str, tamper: str, bypass: str
) -> None:
    lite_code, lite, lite_err = _sqlite(tmp_path / "sqlite", tamper)
    code, report, err = _postgres(tmp_path / "pg", pg_url, tamper, bypass)
    assert (lite_code, code) == (1, 1)
    assert report["findings"] == lite["findings"] and report["findings"]
    assert err.splitlines()[-1] == lite_err.splitlines()[-1]
    assert err.splitlines()[-1].startswith("operator: audit log TAMPERED: ")


def test_the_append_only_trigger_refuses_the_engines_role(pg_url: str) -> None:
    asyncio.run(_seed(_executor(PgActionDB(pg_url))))
    with psycopg.connect(pg_url, autocommit=True) as conn, pytest.raises(psycopg.IntegrityError):
        conn.execute("DELETE FROM action_audit_log WHERE id = 5")


def _cli(
    env: dict[str, str], url: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", url, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_tail_export_and_key_read_a_postgresql_log(tmp_path: Path, pg_url: str) -> None:
    asyncio.run(_seed(_executor(PgActionDB(pg_url))))
    env = cli_env(tmp_path)
    tail = _cli(env, pg_url, "audit", "tail", "-n", "3", "--json")
    assert tail.returncode == 0, tail.stderr
    with psycopg.connect(pg_url) as conn:
        newest = [r[0] for r in conn.execute("SELECT id FROM action_audit_log ORDER BY id DESC")]
        origin = conn.execute("SELECT origin FROM audit_origin").fetchone()
    assert sorted(e["id"] for e in json.loads(tail.stdout)) == sorted(newest[:3])
    ledger = tmp_path / "ledger.jsonl"
    export = _cli(env, pg_url, "audit", "export", str(ledger))
    assert export.returncode == 0, export.stderr
    assert export.stdout.startswith(f"exported events 1..{newest[0]} ({len(newest)} events)")
    checked = _cli(env, pg_url, "audit", "verify", "--ledger", str(ledger))
    assert checked.returncode == 0, checked.stderr
    key = _cli(env, pg_url, "audit", "key")
    assert key.returncode == 0, key.stderr
    assert origin is not None and key.stdout.splitlines()[-1] == f"origin {origin[0]}"


def test_secrets_are_this_hosts_file_whatever_the_database(tmp_path: Path, pg_url: str) -> None:
    # The secrets file is per host (each runner reads its own): the URL changes nothing.
    env = cli_env(tmp_path, OPERATOR_SECRETS_FILE=str(tmp_path / "secrets"))
    stored = _cli(env, pg_url, "secrets", "set", "PAGER_TOKEN", stdin="s3cret\n")
    assert stored.returncode == 0, stored.stderr
    assert _cli(env, pg_url, "secrets", "list").stdout == "PAGER_TOKEN\n"
    assert b"s3cret" not in (tmp_path / "secrets").read_bytes()
    assert _cli(env, pg_url, "secrets", "delete", "PAGER_TOKEN").returncode == 0
    assert _cli(env, pg_url, "secrets", "list").stdout == ""
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM action_audit_log").fetchone() == (0,)


def test_signed_checkpoints_anchor_a_postgresql_chain_against_a_forger(
    tmp_path: Path, pg_url: str
) -> None:
    from operator_core.db.pg.rows import PgConn

    from tests.anchor.chain import rechain

    env = cli_env(tmp_path)  # its state directory holds the key and the checkpoint file
    for i in range(3):
        done = _cli(env, pg_url, "--subject", "demo", "propose", "check_health", "--reason", f"{i}")
        assert done.returncode == 0, done.stderr
    with psycopg.connect(pg_url) as conn:
        ((head,),) = conn.execute("SELECT max(id) FROM action_audit_log").fetchall()
    checkpoints = tmp_path / "state" / "operator" / "checkpoints" / "checkpoints.log"
    password = psycopg.conninfo.conninfo_to_dict(pg_url)["password"]
    assert password and str(password) not in checkpoints.read_text()  # published, no secret
    clean = _cli(env, pg_url, "audit", "verify")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.startswith(f"audit log OK: {head} events, chain intact; anchored to")
    # A forger who edits an event and recomputes every hash after it: the chain alone holds.
    with psycopg.connect(pg_url, autocommit=True) as raw:
        raw.execute("SET session_replication_role = replica")
        conn = PgConn(raw)
        conn.execute("UPDATE action_audit_log SET actor = 'mallory' WHERE id = 1")
        rechain(conn)  # type: ignore[arg-type]
    forged = _cli(env, pg_url, "audit", "verify", "--json")
    assert forged.returncode == 1
    kinds = {f["kind"] for f in json.loads(forged.stdout)["findings"]}
    assert "rewritten" in kinds and "altered" not in kinds
    assert forged.stderr.startswith("operator: audit log TAMPERED: events 1..")
