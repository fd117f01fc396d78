"""Each way of tampering with the audit table, done with a raw SQLite connection by someone
who knows the format, is caught by the published checkpoints and named."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from operator_core.anchor.checkpoint import Checkpoint, parse, sign
from operator_core.anchor.keys import SigningKey, load_signing_key
from operator_core.anchor.verify import event_hash

from tests.anchor.chain import (
    ORIGIN,
    Logged,
    append,
    checkpoint,
    fill,
    fix_sequence,
    head,
    kinds,
    messages,
    rechain,
    ts,
    unlock,
)


def test_the_hash_is_the_writers(tmp_path: Path) -> None:
    from operator_core.db.audit import audit_hash

    args = ("ab" * 32, 3, None, "approved", '{"é":"\\n"}', "bob@h (x)", ts(1))
    assert event_hash(*args) == audit_hash(*args)


def test_a_clean_chain_verifies_and_is_anchored_to_its_last_checkpoint(log: Logged) -> None:
    report = log.verify()
    assert report.ok, messages(report)
    assert (report.events, report.head_id, report.anchored_to) == (131, 131, 130)
    assert report.to_json()["findings"] == []


def test_rewritten_event_with_recomputed_hashes(log: Logged) -> None:
    unlock(log.conn)
    log.conn.execute("UPDATE action_audit_log SET actor = 'mallory' WHERE id = 55")
    rechain(log.conn, 55)
    report = log.verify()
    assert kinds(report)[0] == "rewritten"
    assert messages(report)[0].startswith(
        "events 51..60 were rewritten (edited, forged, removed or reordered): checkpoint 6 at "
        "18:01:00Z saw another event 60"
    )
    # Every later checkpoint disagrees too, each naming its own stretch.
    assert kinds(report) == ["rewritten"] * 8


def test_swapped_events_with_recomputed_hashes(log: Logged) -> None:
    unlock(log.conn)
    a, b = log.conn.execute(
        "SELECT event_data, timestamp FROM action_audit_log WHERE id IN (33, 34) ORDER BY id"
    ).fetchall()
    for id_, (data, _) in ((33, b), (34, a)):
        log.conn.execute("UPDATE action_audit_log SET event_data = ? WHERE id = ?", (data, id_))
    rechain(log.conn, 33)
    report = log.verify()
    assert messages(report)[0].startswith("events 31..40 were rewritten (")


def test_swapped_events_without_recomputing_break_the_chain(log: Logged) -> None:
    unlock(log.conn)
    log.conn.execute("UPDATE action_audit_log SET id = -1 WHERE id = 33")
    log.conn.execute("UPDATE action_audit_log SET id = 33 WHERE id = 34")
    log.conn.execute("UPDATE action_audit_log SET id = 34 WHERE id = -1")
    report = log.verify()
    assert messages(report) == [
        "event 33: prev_hash is not the hash of the event before it",
        "events 33 and 34 were swapped",
    ]


def test_forged_event_inserted_before_the_last_checkpoint(log: Logged) -> None:
    unlock(log.conn)
    log.conn.execute("UPDATE action_audit_log SET id = id + 1000 WHERE id > 90")
    log.conn.execute("UPDATE action_audit_log SET id = id - 999 WHERE id > 1000")
    append_at = log.conn.execute(
        "INSERT INTO action_audit_log (id, event_type, event_data, actor, timestamp, "
        "prev_hash, hash) VALUES (91, 'approved', '{}', 'alice@host', ?, '', '')",
        (ts(90),),
    )
    assert append_at.rowcount == 1
    rechain(log.conn, 91)
    report = log.verify()
    assert kinds(report)[0] == "rewritten"
    assert messages(report)[0].startswith("events 91..100 were rewritten (")


def test_forged_append_after_the_last_checkpoint_dated_before_it(log: Logged) -> None:
    append(log.conn, "approved", {}, "alice@host", 7, when=ts(100))
    report = log.verify()
    assert kinds(report) == ["backdated"]
    assert messages(report)[0] == (
        f"event 132 is dated {ts(100)}, before checkpoint 13 that ends before it: "
        "it was appended later and backdated"
    )


@pytest.mark.parametrize("deleted", [1, 5, 131])
def test_deleted_tail_with_sequence_fixed_is_a_rollback(log: Logged, deleted: int) -> None:
    unlock(log.conn)
    log.conn.execute("DELETE FROM action_audit_log WHERE id > ?", (131 - deleted,))
    fix_sequence(log.conn)
    report = log.verify()
    if deleted == 1:
        assert report.ok  # event 131 was never checkpointed
        assert report.anchored_to == 130
        return
    last = 131 - deleted
    assert kinds(report) == ["rollback"]
    assert messages(report)[0].startswith(
        f"events {last + 1}..130 are missing: checkpoint 13 at 18:02:10Z saw them; "
        f"the database ends at event {last}"
    )


def test_deleted_tail_is_truncation_while_the_sequence_remembers(log: Logged) -> None:
    unlock(log.conn)
    log.conn.execute("DELETE FROM action_audit_log WHERE id > 119")
    report = log.verify()
    assert messages(report) == ["events 120..130 are missing: checkpoint 13 at 18:02:10Z saw them"]
    assert report.findings.items[0].to_json() == {
        "kind": "truncated",
        "message": messages(report)[0],
        "first_event": 120,
        "last_event": 130,
        "checkpoint": 13,
    }


def test_deleted_middle_events_renumbered_and_rechained(log: Logged) -> None:
    unlock(log.conn)
    log.conn.execute("DELETE FROM action_audit_log WHERE id BETWEEN 61 AND 64")
    log.conn.execute("UPDATE action_audit_log SET id = id - 4 WHERE id > 64")
    fix_sequence(log.conn)
    rechain(log.conn, 61)
    report = log.verify()
    assert kinds(report)[0] == "rewritten"
    assert messages(report)[0].startswith("events 61..70 were rewritten (")
    assert kinds(report)[-1] == "rollback"


def test_deleted_middle_events_left_as_a_gap(log: Logged) -> None:
    unlock(log.conn)
    log.conn.execute("DELETE FROM action_audit_log WHERE id BETWEEN 118 AND 121")
    report = log.verify()
    assert "events 118..121 are missing: checkpoint 12 at 18:02:00Z saw event 120" in messages(
        report
    )


def test_renumbered_events_keep_their_hash_but_not_their_place(log: Logged) -> None:
    unlock(log.conn)
    log.conn.execute("UPDATE action_audit_log SET id = id + 1000 WHERE id >= 100")
    log.conn.execute("UPDATE action_audit_log SET id = id - 995 WHERE id >= 1000")
    report = log.verify()
    assert "events 100..104 are missing" in messages(report)
    assert any(
        m.startswith("event 115 is the event checkpoint 11 at 18:01:50Z saw as event 110")
        for m in messages(report)
    )


def test_older_copy_of_the_file_is_a_rollback(log: Logged, tmp_path: Path, key: SigningKey) -> None:
    old = tmp_path / "old.db"
    log.conn.close()
    young = Logged(tmp_path / "young.db", key)
    young.conn.close()
    shutil.copy(log.path, old)
    conn = sqlite3.connect(old, isolation_level=None)
    conn.execute("DROP TRIGGER action_audit_log_no_delete")
    conn.execute("DELETE FROM action_audit_log WHERE id > 80")
    fix_sequence(conn)
    log.conn = conn
    report = log.verify()
    assert kinds(report) == ["rollback"]
    assert "the database ends at event 80" in messages(report)[0]


def test_bad_signature_and_foreign_origin_are_named(log: Logged, tmp_path: Path) -> None:
    edited = parse(log.cps[2].text().replace("\n30\n", "\n31\n"))
    other = load_signing_key(tmp_path / "other.key")
    assert other is not None
    size, digest = head(log.conn)
    forged = sign(Checkpoint(ORIGIN, size, digest, log.cps[-1].checkpoint.time), other)
    foreign = checkpoint(log.conn, log.key, origin="operator/other-db")
    log.cps = [*log.cps[:2], edited, forged, foreign]
    report = log.verify()
    assert kinds(report) == ["bad_signature", "bad_signature", "foreign_checkpoint"]
    assert messages(report)[0].startswith("checkpoint 3 at 18:00:30Z (event 31) is not signed")
    assert messages(report)[2] == (
        "checkpoint 5 at 18:02:11Z is for 'operator/other-db', not this database "
        "('operator/test-db')"
    )


def test_two_checkpoints_disagreeing_on_one_event_are_a_fork(log: Logged) -> None:
    unlock(log.conn)
    log.conn.execute("UPDATE action_audit_log SET actor = 'mallory' WHERE id = 131")
    rechain(log.conn, 131)
    late = checkpoint(log.conn, log.key)
    log.conn.execute("DELETE FROM action_audit_log WHERE id = 131")
    fix_sequence(log.conn)
    fill(log.conn, 1)
    early = checkpoint(log.conn, log.key)
    log.cps += [early, late]
    report = log.verify()
    assert messages(report) == [
        "checkpoints 14 and 15 disagree on event 131: the log was rewritten and checkpointed again"
    ]
