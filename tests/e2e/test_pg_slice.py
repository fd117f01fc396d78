"""The first commands on PostgreSQL (issue 26's first slice): ``propose``, ``actions list``
and ``approve`` through the real CLI, doing what they do on SQLite, audit chain included."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from operator_core.db import audit
from operator_core.db.pg.connection import PgDatabase

from tests.e2e.conftest import cli_env

# What differs between two runs whatever the engine: times and who ran them.
_VOLATILE = ("_at", "_identity", "_by")


def _operator(tmp_path: Path, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "operator_core.cli", "--db", db, "--subject", "demo", *args],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _session(tmp_path: Path, db: str) -> list[dict[str, Any]]:
    """Propose two actions with approval on, approve one; the list as JSON, steady fields."""
    steps = [
        ("--approval-mode", "on", "propose", "restart_store", "--param", "store_id=s2"),
        ("--approval-mode", "on", "propose", "check_health", "--reason", "look"),
        ("actions", "list"),
        ("--approval-mode", "on", "approve", "1"),
    ]
    outputs = []
    for args in steps:
        if "propose" in args and "--reason" not in args:
            args = (*args, "--reason", "stuck 50% ?")
        done = _operator(tmp_path, db, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert done.stderr == ""
        outputs.append(done.stdout)
    assert outputs[0].strip() == "1" and outputs[1].strip() == "2"
    assert "awaiting approval" in outputs[2]
    assert outputs[3].startswith("action 1 approved by ")
    done = _operator(tmp_path, db, "actions", "list", "--json")
    assert done.returncode == 0, done.stderr
    return [
        {k: v for k, v in row.items() if not k.endswith(_VOLATILE)}
        for row in json.loads(done.stdout)
    ]


def test_propose_list_approve_as_on_sqlite(tmp_path: Path, pg_url: str) -> None:
    on_sqlite = _session(tmp_path, str(tmp_path / "ops.db"))
    on_postgres = _session(tmp_path, pg_url)
    assert on_postgres == on_sqlite
    assert [(r["id"], r["status"]) for r in on_postgres] == [(2, "validated"), (1, "validated")]
    password = psycopg.conninfo.conninfo_to_dict(pg_url).get("password")

    async def chain() -> tuple[tuple[bool, int, str], list[str]]:
        db = PgDatabase(pg_url)
        try:
            verdict = await db.read(audit.verify_chain)
            types = await db.read(
                lambda c: [r[0] for r in c.execute("SELECT event_type FROM action_audit_log")]
            )
            return verdict, types
        finally:
            await db.close()

    verdict, types = asyncio.run(chain())
    assert verdict == (True, 4, "4 events, chain intact")
    assert sorted(types) == ["approved", "policy_seeded", "proposed", "proposed"]
    assert not list(tmp_path.glob("postgres*"))  # no file made from the URL
    assert not password or all(password not in p.name for p in tmp_path.rglob("*"))
