"""``operator ticket`` as a script sees it: the lifecycle through the real CLI, --json
output, and bad input that is one line on stderr, a non-zero exit and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import assert_one_line_error, dump, query, run_cli, seed

CLI = Callable[..., Any]


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return str(result.stdout)


def test_ticket_lifecycle_through_the_cli(db: Path) -> None:
    opened = json.loads(
        ok(
            run_cli(
                db,
                "ticket",
                "open",
                "API down",
                "--summary",
                "502 from every pod",
                "--severity",
                "high",
                "--service",
                "api",
                "--team",
                "payments",
                "--assignee",
                "ana",
                "--meta",
                "region=eu-west-1",
                "--meta",
                "runbook=https://x/y?a=b",
                "--json",
            )
        )
    )
    assert opened["id"] == 1 and opened["status"] == "open"
    assert opened["metadata"] == {"region": "eu-west-1", "runbook": "https://x/y?a=b"}
    assert ok(run_cli(db, "ticket", "open", "second")).strip() == "2"

    assert "acknowledged by" in ok(run_cli(db, "ticket", "ack", "1"))
    escalated = ok(run_cli(db, "ticket", "escalate", "1"))
    assert "severity high -> critical" in escalated
    updated = ok(
        run_cli(db, "ticket", "update", "1", "--assignee", "bo", "--unset-meta", "runbook")
    )
    assert "assignee ana -> bo" in updated and "metadata changed" in updated
    assert "resolved by" in ok(run_cli(db, "ticket", "resolve", "1"))

    shown = json.loads(ok(run_cli(db, "ticket", "show", "1", "--json")))
    assert shown["ticket"]["status"] == "resolved"
    assert shown["ticket"]["severity"] == "critical"
    assert shown["ticket"]["metadata"] == {"region": "eu-west-1"}
    assert [(e["event_type"], e["to_status"]) for e in shown["events"]] == [
        ("incident_created", None),
        ("state_changed", "acknowledged"),
        ("escalation", None),
        ("state_changed", "resolved"),
    ]
    text = ok(run_cli(db, "ticket", "show", "1"))
    assert "metadata.region: eu-west-1" in text and "escalation" in text

    listed = json.loads(ok(run_cli(db, "ticket", "list", "--status", "open", "--json")))
    assert [t["id"] for t in listed] == [2]
    assert "API down" in ok(run_cli(db, "ticket", "list"))

    audit = [
        r["event_type"] for r in query(db, "SELECT event_type FROM action_audit_log ORDER BY id")
    ]
    assert audit == [
        "ticket_opened",
        "ticket_opened",
        "ticket_acknowledged",
        "ticket_escalated",
        "ticket_updated",
        "ticket_resolved",
    ]
    assert "audit log OK" in ok(run_cli(db, "audit", "verify"))


def _nothing(db: Path) -> None:
    seed(db, lambda ex: ex.db.data_version())


def _open(db: Path) -> None:
    seed(db, lambda ex: ex.open_ticket("disk full", severity="high", service="api"))


def _resolved(db: Path) -> None:
    async def go(ex: Any) -> None:
        t = await ex.open_ticket("disk full")
        await ex.resolve_ticket(t.id, "ana")

    seed(db, go)


def _critical(db: Path) -> None:
    seed(db, lambda ex: ex.open_ticket("disk full", severity="critical"))


# Whether a file was made is SQLite's question ("no database", "new database" cases).
NO_FILE = pytest.mark.sqlite_only("checks whether a file was made")

BAD_INPUT = [
    ("bad severity", _nothing, ["ticket", "open", "t", "--severity", "sev1"], "severity"),
    ("empty title", _nothing, ["ticket", "open", ""], "title"),
    ("meta without =", _nothing, ["ticket", "open", "t", "--meta", "region"], "KEY=VALUE"),
    ("meta twice", _nothing, ["ticket", "open", "t", "--meta", "a=1", "--meta", "a=2"], "twice"),
    ("bad meta key", _nothing, ["ticket", "open", "t", "--meta", "a b=1"], "metadata key"),
    ("ack unknown", _open, ["ticket", "ack", "9"], "no ticket with id 9"),
    ("ack resolved", _resolved, ["ticket", "ack", "1"], "resolved"),
    ("resolve resolved", _resolved, ["ticket", "resolve", "1"], "already resolved"),
    ("escalate lower", _open, ["ticket", "escalate", "1", "--severity", "low"], "higher"),
    ("escalate equal", _open, ["ticket", "escalate", "1", "--severity", "high"], "higher"),
    ("escalate critical", _critical, ["ticket", "escalate", "1"], "already critical"),
    ("escalate bad", _open, ["ticket", "escalate", "1", "--severity", "p1"], "severity"),
    ("update nothing", _open, ["ticket", "update", "1"], "nothing to update"),
    ("update bad severity", _open, ["ticket", "update", "1", "--severity", "x"], "severity"),
    ("update unknown", _open, ["ticket", "update", "4", "--team", "x"], "no ticket with id 4"),
    (
        "update meta clash",
        _open,
        ["ticket", "update", "1", "--meta", "a=1", "--unset-meta", "a"],
        "both",
    ),
    ("show unknown", _open, ["ticket", "show", "3"], "no ticket with id 3"),
    ("show non-number", _open, ["ticket", "show", "one"], "ID"),
    ("list bad status", _open, ["ticket", "list", "--status", "closed"], "status"),
    ("no database", None, ["ticket", "ack", "1"], "no database"),
    ("empty title, new database", None, ["ticket", "open", " "], "title"),
    ("bad meta key, new database", None, ["ticket", "open", "t", "--meta", "=1"], "KEY=VALUE"),
    ("bad team, new database", None, ["ticket", "open", "t", "--team", "a\nb"], "one line"),
]


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        pytest.param(s, a, e, id=name, marks=[NO_FILE] if "database" in name else [])
        for name, s, a, e in BAD_INPUT
    ],
)
def test_bad_ticket_input_is_one_line_and_changes_nothing(
    db: Path, cli_in_process: CLI, setup: Any, args: list[str], expected: str
) -> None:
    if setup is None:
        line = assert_one_line_error(cli_in_process(*args))
        assert expected.lower() in line.lower()
        assert not db.exists()
        return
    setup(db)
    before = dump(db)
    line = assert_one_line_error(cli_in_process(*args))
    assert expected.lower() in line.lower()
    assert dump(db) == before


def test_ack_twice_is_refused_and_changes_nothing(db: Path, cli_in_process: CLI) -> None:
    _open(db)
    assert cli_in_process("ticket", "ack", "1").returncode == 0
    before = dump(db)
    line = assert_one_line_error(cli_in_process("ticket", "ack", "1"))
    assert "acknowledged" in line
    assert dump(db) == before
