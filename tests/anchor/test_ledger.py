"""Export a signed ledger from a real database file and verify it with no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from operator_core.anchor.keys import SigningKey, load_signing_key
from operator_core.anchor.ledger import LedgerError, export_ledger_file, verify_ledger_file
from operator_core.anchor.verify import EVENTS_RANGE_SQL, GENESIS_HASH, event_hash

from tests.anchor.chain import Logged, kinds


def export(log: Logged, path: Path, first: int = 1, last: int = 131) -> int:
    prev = log.conn.execute(
        "SELECT hash FROM action_audit_log WHERE id = ?", (first - 1,)
    ).fetchone()
    return export_ledger_file(
        path,
        rows=log.conn.execute(EVENTS_RANGE_SQL, {"first": first, "last": last}),
        checkpoints=log.cps,
        key=log.key,
        origin="operator/test-db",
        first=first,
        last=last,
        prev_hash=prev[0] if prev else GENESIS_HASH,
    )


def test_whole_ledger_verifies_without_the_database(log: Logged, tmp_path: Path) -> None:
    path = tmp_path / "audit.ledger"
    assert export(log, path) == 131
    log.conn.close()
    (tmp_path / "operator.db").unlink()
    report = verify_ledger_file(path, log.key.verifier)
    assert report.ok, [f.message for f in report.findings.items]
    assert (report.events, report.anchored_to, report.checkpoints) == (131, 130, 13)


def test_a_range_verifies_against_its_own_checkpoints(log: Logged, tmp_path: Path) -> None:
    path = tmp_path / "part.ledger"
    assert export(log, path, 41, 95) == 55
    report = verify_ledger_file(path)
    assert report.ok and report.anchored_to == 90 and report.checkpoints == 5


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, lines: list[dict]) -> None:
    path.write_text("".join(json.dumps(v) + "\n" for v in lines))


def test_event_edited_in_the_ledger_and_rechained(log: Logged, tmp_path: Path) -> None:
    path = tmp_path / "audit.ledger"
    export(log, path)
    lines = _lines(path)
    events = [v for v in lines if "event" in v]
    events[70]["event"][5] = "mallory"
    prev = events[70]["event"][7]
    for v in events[70:]:
        e = v["event"]
        e[7] = prev
        e[8] = prev = event_hash(prev, *e[1:7])
    _write(path, lines)
    report = verify_ledger_file(path, log.key.verifier)
    assert kinds(report)[0] == "rewritten" and "bad_seal" in kinds(report)
    assert report.findings.items[0].message.startswith("events 71..80 were rewritten (")


def test_cut_short_ledger_is_named(log: Logged, tmp_path: Path) -> None:
    path = tmp_path / "audit.ledger"
    export(log, path)
    _write(path, _lines(path)[:-30])
    report = verify_ledger_file(path, log.key.verifier)
    assert set(kinds(report)) >= {"truncated", "unsealed"}


def test_ledger_checked_with_another_key(log: Logged, tmp_path: Path) -> None:
    path = tmp_path / "audit.ledger"
    export(log, path)
    other: SigningKey | None = load_signing_key(tmp_path / "other.key")
    assert other is not None
    report = verify_ledger_file(path, other.verifier)
    assert kinds(report).count("bad_signature") == 13
    assert {"foreign_key", "bad_seal"} <= set(kinds(report))


def test_not_a_ledger_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_text('{"something": 1}\n')
    with pytest.raises(LedgerError, match="not an operator-audit-ledger/1 file"):
        verify_ledger_file(path)
