"""An automation's own secret reaches the commands its runs propose, through the real Runner
and a real subprocess, and nothing else: not a direct proposal of the same action, and not
a proposal whose actor merely calls itself ``automation:NAME``."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from operator_core.actions.executor import ActionExecutor
from operator_core.secrets import SecretStore
from operator_core.subjects.runbook import RunbookSubject

from tests.automations.helpers import action, linear
from tests.automations.runs import proposals, rows, run_idle, store

GLOBAL, SCOPED = "global-value-123456", "scoped-value-654321"

# The command prints a digest of the value it got: not a form of the value, so it is not
# redacted, and it tells which value the command saw.
PRINT_DIGEST = "import hashlib, os; print(hashlib.sha256(os.environb[b'TOKEN']).hexdigest())"
RUNBOOK = f"""
[actions.show_token]
argv = ["{sys.executable}", "-c", "{PRINT_DIGEST}"]
env = {{ TOKEN = "{{secret:TOKEN}}" }}
timeout = 10
"""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def output_of(db: Path, proposal_id: int) -> str:
    (record,) = rows(db, "SELECT * FROM action_records WHERE proposal_id = ?", (proposal_id,))
    return str(record["result_data"])


async def test_the_automations_own_secret_reaches_only_its_runs(
    make_executor: Any, db_path: Path, tmp_path: Path
) -> None:
    store_ = SecretStore()
    store_.set("TOKEN", GLOBAL)
    store_.set("TOKEN", SCOPED, automation="auto")
    book = tmp_path / "runbook.toml"
    book.write_text(RUNBOOK)
    ex: ActionExecutor = await make_executor(subject=RunbookSubject(book, "runbook"))
    await store(ex, linear(action("show", "show_token")))
    await ex.open_ticket("disk full", severity="high")
    direct = await ex.propose_action("show_token", {}, reason="by hand")
    forged = await ex.propose_action(
        "show_token", {}, reason="forged", proposed_by="automation:auto"
    )
    await run_idle(ex)
    by_reason = {p["reason"]: p for p in proposals(db_path)}
    assert {p["status"] for p in by_reason.values()} == {"completed"}, by_reason
    (automated,) = [p for r, p in by_reason.items() if r not in ("by hand", "forged")]
    assert digest(SCOPED) in output_of(db_path, automated["id"])
    assert digest(GLOBAL) in output_of(db_path, direct.id)
    assert digest(GLOBAL) in output_of(db_path, forged.id)
    for p in by_reason.values():
        assert SCOPED not in output_of(db_path, p["id"])
