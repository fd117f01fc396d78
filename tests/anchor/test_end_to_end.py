"""The engine writes, a publisher checkpoints what it wrote, and ``verify_database`` checks
the file against those checkpoints and its own tables."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from operator_core.anchor.check import verify_database
from operator_core.anchor.config import publisher_from_env, sinks_from_env
from operator_core.anchor.keys import SigningKey
from operator_core.anchor.publisher import Publisher
from operator_core.anchor.sinks import FileSink, read_file
from operator_core.errors import ConfigError

from tests.anchor.chain import head, rechain, unlock

ORIGIN = "operator/e2e"


async def test_engine_checkpointed_database_verifies_then_tampering_shows(
    make_executor: Any, db_path: Path, tmp_path: Path, key: SigningKey
) -> None:
    anchors = tmp_path / "anchors"
    anchors.mkdir()

    def read_head() -> tuple[int, str]:
        with closing(sqlite3.connect(db_path)) as conn:
            return head(conn)

    pub = Publisher(key, ORIGIN, [FileSink(anchors)], every_events=3, every_seconds=0.1)
    pub.start()
    ex = await make_executor(approval_mode=True)
    for n in range(4):
        p = await ex.propose_action("ok", {"seconds": 0}, f"r{n}")
        pub.observe(*read_head())
        await ex.approve_proposal(p.id, "alice@ops")
        pub.observe(*read_head(), ["approved"])
        await ex.execute_proposal(p.id)
        pub.observe(*read_head())
    await ex.close()
    assert pub.flush()
    pub.stop()
    cps = read_file(anchors / "checkpoints.log").checkpoints
    with closing(sqlite3.connect(db_path)) as conn:
        report = verify_database(conn, cps, key.verifier, ORIGIN)
        assert report.ok, [f.message for f in report.findings.items]
        assert report.anchored_to == report.head_id
        # Rewrite who approved action 2, in the table and in its event, rechaining.
        unlock(conn)
        event = conn.execute(
            "SELECT id FROM action_audit_log WHERE proposal_id = 2 AND event_type = 'approved'"
        ).fetchone()[0]
        conn.execute("UPDATE action_audit_log SET actor = 'mallory' WHERE id = ?", (event,))
        conn.execute("UPDATE action_proposals SET approved_by = 'mallory' WHERE id = 2")
        rechain(conn, event)
        conn.commit()
        report = verify_database(conn, cps, key.verifier, ORIGIN)
    assert {f.kind for f in report.findings.items} == {"rewritten", "actor_mismatch"}
    assert report.to_json()["ok"] is False


def test_sinks_and_publisher_from_the_environment(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPERATOR_AUDIT_KEY_FILE", str(tmp_path / "audit.key"))
    monkeypatch.delenv("OPERATOR_AUDIT_KEY", raising=False)
    assert publisher_from_env(ORIGIN, env={}) is None
    env = {
        "OPERATOR_AUDIT_CHECKPOINT_DIR": str(tmp_path),
        "OPERATOR_AUDIT_SYSLOG": "127.0.0.1:5514",
        "OPERATOR_AUDIT_WEBHOOK": "http://127.0.0.1:9/hook",
        "OPERATOR_AUDIT_EVERY": "50",
    }
    pub = publisher_from_env(ORIGIN, env=env)
    assert pub is not None and pub.every_events == 50 and pub.every_seconds == 5.0
    assert [s.name.split()[0] for s in pub.sinks] == ["file", "syslog", "webhook"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OPERATOR_AUDIT_CHECKPOINT_DIR", "/nonexistent/x", "is not a directory"),
        ("OPERATOR_AUDIT_SYSLOG", "loghost", "use 1, a socket path, or host:port"),
        ("OPERATOR_AUDIT_WEBHOOK", "ftp://x", r"is not an http\(s\) URL"),
    ],
)
def test_bad_settings_are_one_line(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sinks_from_env({name: value})
