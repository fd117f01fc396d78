"""Sharded verification over several processes finds what the one-pass walk finds."""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_core.anchor import parallel
from operator_core.anchor.parallel import verify_file

from tests.anchor.chain import ORIGIN, Logged, fix_sequence, kinds, rechain, unlock


@pytest.fixture(autouse=True)
def _small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "MIN_SHARD", 10)


def _both(log: Logged) -> tuple[list[str], list[str]]:
    one = log.verify()
    log.conn.commit()
    many = verify_file(log.path, log.cps, log.key.verifier, ORIGIN, workers=3)
    assert (many.events, many.head_id, many.head_hash, many.anchored_to) == (
        one.events,
        one.head_id,
        one.head_hash,
        one.anchored_to,
    )
    return kinds(one), kinds(many)


def test_clean_file_verifies_on_three_processes(log: Logged) -> None:
    one, many = _both(log)
    assert one == many == []


def test_tampering_found_the_same_way(log: Logged) -> None:
    unlock(log.conn)
    log.conn.execute("UPDATE action_audit_log SET actor = 'mallory' WHERE id = 55")
    rechain(log.conn, 55)
    log.conn.execute("DELETE FROM action_audit_log WHERE id > 120")
    fix_sequence(log.conn)
    one, many = _both(log)
    assert one == many and one[-1] == "rollback" and one[0] == "rewritten"


def test_a_gap_at_a_shard_edge_is_still_named(log: Logged, tmp_path: Path) -> None:
    unlock(log.conn)
    # Shards of 44 events: the second starts at 45.
    log.conn.execute("DELETE FROM action_audit_log WHERE id BETWEEN 38 AND 50")
    one, many = _both(log)
    assert "truncated" in one and "truncated" in many
    assert "gap" in many
