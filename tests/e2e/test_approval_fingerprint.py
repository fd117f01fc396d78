"""What you approved is what runs: an approval is bound to a fingerprint of the rendered
command, and a real runner refuses an attempt whose command changed since (the runbook file
was edited), sending the action back for approval with the reason."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from operator_core.clock import from_db

from tests.e2e.conftest import cli_env, query, run_cli

# The command writes a marker file: whether it ran is read off the disk.
RUNBOOK = """
[actions.mark]
description = "@DESC@"
argv = [@PY@, "-c", "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('ran')", @OUT@]
env = { TOKEN = "{secret:TOKEN}" }
requires_approval = true
"""

# This one fails every time, after noting each attempt in its log file, and retries.
FLAKY = """
[actions.flaky]
argv = [@PY@, "-c", "import sys; open(sys.argv[1], 'a').write('x\\\\n'); sys.exit(1)", @OUT@]
requires_approval = true
retry = { max_retries = 2, backoff_min = 1.0, backoff_max = 1.0 }
"""


def write(path: Path, text: str, out: Path, desc: str = "writes a marker") -> None:
    path.write_text(
        text.replace("@PY@", json.dumps(sys.executable))
        .replace("@OUT@", json.dumps(str(out)))
        .replace("@DESC@", desc)
    )


class Ops:
    """The real CLI on one database and one runbook file."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.db = tmp_path / "ops.db"
        self.runbook = tmp_path / "ops.toml"
        self.env = cli_env(tmp_path, **env)

    def __call__(self, *args: str, ok: bool = True, **env: str) -> str:
        done = run_cli(self.db, *args, env={**self.env, **env}, subject=f"runbook:{self.runbook}")
        if ok:
            assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    def show(self, pid: int) -> dict:
        return json.loads(self(*("actions", "show", str(pid), "--json")))


def row(db: Path, pid: int) -> tuple:
    return tuple(
        query(
            db,
            "SELECT status, approved_at, approval_voided, retry_count, fingerprint_sha256 "
            "FROM action_proposals WHERE id = ?",
            (pid,),
        )[0]
    )


def test_an_edited_argv_voids_the_approval_and_nothing_runs(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    ops = Ops(tmp_path, OPERATOR_SECRET_TOKEN="one")
    write(ops.runbook, RUNBOOK, first)
    pid = int(ops("propose", "mark", "--reason", "mark it").strip())
    ops("approve", str(pid))
    approved = ops.show(pid)["approval"]
    assert approved["matches"] is True and str(first) in approved["runs"]

    write(ops.runbook, RUNBOOK, second)  # edited after the approval
    assert ops.show(pid)["approval"]["matches"] is False
    ops("run", "--until-idle")

    assert not first.exists() and not second.exists()  # no process wrote its marker
    status, approved_at, voided, retries, sha = row(ops.db, pid)
    assert (status, approved_at, sha, retries) == ("validated", None, None, 0)
    assert voided.startswith("what runs changed since approval: argv[3]")
    assert "/first' -> '…" in voided and voided.endswith("/second'")
    events = query(
        ops.db,
        "SELECT event_data FROM action_audit_log WHERE proposal_id = ? "
        "AND event_type = 'approval_voided'",
        (pid,),
    )
    assert [json.loads(e[0])["reason"] for e in events] == [voided]
    shown = ops("actions", "show", str(pid))
    assert "[awaiting approval]" in shown
    assert f"approval voided: {voided}" in shown
    assert "attempt 1: not run" in shown
    assert ops.show(pid)["approval"]["voided"] == voided
    listed = ops("actions", "list")
    assert "awaiting approval" in listed

    # The next approver approves what runs now, and it runs.
    ops("approve", str(pid))
    ops("run", "--until-idle")
    assert second.read_text() == "ran" and not first.exists()
    assert row(ops.db, pid)[0] == "completed"
    assert row(ops.db, pid)[2] is None


def test_a_secret_value_or_description_change_does_not_void_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ops = Ops(tmp_path, OPERATOR_SECRET_TOKEN="one")
    write(ops.runbook, RUNBOOK, out)
    pid = int(ops("propose", "mark", "--reason", "mark it").strip())
    ops("approve", str(pid))
    # The secret's value and the description change; the rendered placeholders do not.
    write(ops.runbook, RUNBOOK, out, desc="writes the marker file")
    assert ops.show(pid)["approval"]["matches"] is True
    ops("run", "--until-idle", OPERATOR_SECRET_TOKEN="two")
    assert out.read_text() == "ran"
    assert row(ops.db, pid)[0] == "completed"


def test_a_retry_after_an_edit_is_stopped_too(tmp_path: Path) -> None:
    log, other = tmp_path / "attempts.log", tmp_path / "other.log"
    ops = Ops(tmp_path)
    write(ops.runbook, FLAKY, log)
    pid = int(ops("propose", "flaky", "--reason", "try it").strip())
    ops("approve", str(pid))
    ops("run", "--until-idle", ok=False)
    assert log.read_text() == "x\n"
    status, _, _, retries, _ = row(ops.db, pid)
    assert (status, retries) == ("failed", 1)  # waiting for its retry

    write(ops.runbook, FLAKY, other)
    # Wait, in real time, for the retry to be due.
    (next_at,) = query(ops.db, "SELECT next_retry_at FROM action_proposals WHERE id = ?", (pid,))[0]
    due = from_db(next_at)
    assert due is not None
    while datetime.now(UTC) < due:
        time.sleep(0.05)
    ops("run", "--until-idle", ok=False)

    assert log.read_text() == "x\n" and not other.exists()
    status, approved_at, voided, retries, _ = row(ops.db, pid)
    assert (status, approved_at, retries) == ("validated", None, 1)  # its attempts are kept
    assert "argv[3]" in voided
    records = query(
        ops.db,
        "SELECT attempt, success, error_message FROM action_records WHERE proposal_id = ? "
        "ORDER BY attempt",
        (pid,),
    )
    assert [tuple(r)[:2] for r in records] == [(1, 0), (2, 0)]
    assert records[1][2] == voided
