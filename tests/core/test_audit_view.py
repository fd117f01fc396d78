"""The audit log as the Audit view reads it (``db/audit_view.py``): pages by keyset on the
audit id, filters by actor, event type, action or any word, bounded reads, on a real SQLite
file filled through the executor."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.db import audit_view
from operator_core.db.audit_view import AuditFilter

from tests.support.rows import rows

EVENTS_SQL = """
SELECT a.id, a.actor, a.event_type, p.action_name FROM action_audit_log a
LEFT JOIN action_proposals p ON p.id = a.proposal_id ORDER BY a.id
"""


async def _fill(ex: ActionExecutor) -> None:
    """Proposals, executions, a cancel by alice and a rejection by bob."""
    for i in range(5):
        p = await ex.propose_action("ok", {"seconds": 0}, reason=f"routine {i}")
        await ex.execute_proposal(p.id or 0, runner_id="r1")
    p = await ex.propose_action("fail_hard", {}, reason="known to break", proposed_by="bot-7")
    await ex.execute_proposal(p.id or 0, runner_id="r1")
    p = await ex.propose_action("ok", {"seconds": 0}, reason="not needed after all")
    await ex.cancel_proposal(p.id or 0, "alice")
    p = await ex.propose_action("guarded", {}, reason="risky")
    await ex.reject_proposal(p.id or 0, "bob", "not during the freeze")


def _ids(page: audit_view.AuditPage | audit_view.Newer) -> list[int]:
    return [e.event.id for e in page.items]


async def _read(ex: ActionExecutor, fn: object, *args: object) -> object:
    return await ex.db.read(fn, *args)  # type: ignore[arg-type]


@pytest.mark.parametrize("window", [3, 5_000])
async def test_pages_walk_every_event_once_newest_page_first(
    executor: ActionExecutor, db_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    await _fill(executor)
    monkeypatch.setattr(audit_view, "WINDOW", window)
    expected = [r["id"] for r in rows(db_path, EVENTS_SQL)]
    assert len(expected) > 20
    page = await executor.db.read(audit_view.latest, audit_view.EVERYTHING, 7)
    assert _ids(page) == expected[-7:]
    assert page.seen == expected[-1]
    walked = _ids(page)
    while page.older is not None:
        page = await executor.db.read(audit_view.older, page.older, audit_view.EVERYTHING, 7)
        assert len(page.items) <= 7
        walked = _ids(page) + walked
    assert walked == expected


async def test_a_filter_matches_actor_event_type_action_and_any_word(
    executor: ActionExecutor, db_path: Path
) -> None:
    await _fill(executor)
    events = rows(db_path, EVENTS_SQL)

    async def found(typed: str) -> list[int]:
        page = await executor.db.read(audit_view.latest, AuditFilter.parse(typed), 1000)
        assert page.older is None
        return _ids(page)

    # An actor is stored as ``user@host (who)``: a part of it is enough.
    alice = [r["id"] for r in events if "(alice)" in r["actor"]]
    assert len(alice) == 1
    assert await found("actor:ALICE") == alice
    assert await found("actor:alice type:cancel") == [
        r["id"] for r in events if "alice" in r["actor"] and r["event_type"] == "cancelled"
    ]
    assert await found("actor:alice type:rejected") == []
    assert await found("type:rejected") == [
        r["id"] for r in events if r["event_type"] == "rejected"
    ]
    fail_hard = [r["id"] for r in events if r["action_name"] == "fail_hard"]
    assert len(fail_hard) >= 3  # proposed, executing, failed...
    assert await found("action:fail_h") == fail_hard
    assert await found("freeze") == [
        r["id"] for r in events if r["event_type"] == "rejected"
    ]  # the rejection's reason, in its data
    assert await found("nothing-like-this") == []
    assert len(await found("")) == len(events)


async def test_a_rare_filter_reads_a_bounded_stretch_and_says_where_it_stopped(
    executor: ActionExecutor, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(executor)
    events = rows(db_path, EVENTS_SQL)
    monkeypatch.setattr(audit_view, "WINDOW", 2)
    monkeypatch.setattr(audit_view, "BUDGET", 6)
    rare = AuditFilter.parse("actor:alice")
    page = await executor.db.read(audit_view.latest, rare, 50)
    top = events[-1]["id"]
    assert page.older == top + 1 - 6  # six ids walked, no more
    alice = [r["id"] for r in events if "alice" in r["actor"]]
    got = _ids(page)
    while page.older is not None:
        page = await executor.db.read(audit_view.older, page.older, rare, 50)
        got = _ids(page) + got
    assert got == alice


async def test_newer_events_are_read_and_counted_after_the_last_one_seen(
    executor: ActionExecutor,
) -> None:
    await _fill(executor)
    first = await executor.db.read(audit_view.latest, audit_view.EVERYTHING, 5)
    p = await executor.propose_action("ok", {"seconds": 0}, reason="late")
    await executor.cancel_proposal(p.id or 0, "carol")
    carol = AuditFilter.parse("actor:carol")
    counted = await executor.db.read(audit_view.count_newer, first.seen, carol)
    assert counted.count == 1 and not counted.more
    fresh = await executor.db.read(audit_view.newer, first.seen, audit_view.EVERYTHING, 1)
    assert fresh.more and len(fresh.items) == 1 and fresh.items[0].action == "ok"
    rest = await executor.db.read(audit_view.newer, fresh.seen, audit_view.EVERYTHING, 10)
    assert not rest.more
    assert [e.event.event_type for e in rest.items][-1] == "cancelled"
    assert "carol" in rest.items[-1].event.actor
    again = await executor.db.read(audit_view.newer, rest.seen, audit_view.EVERYTHING, 10)
    assert again.items == [] and again.seen == rest.seen


def test_a_filter_is_parsed_from_prefixes_and_free_words() -> None:
    f = AuditFilter.parse('actor:alice TYPE:fail action:restart "disk full" now')
    assert f == AuditFilter("alice", "fail", "restart", "disk full now")
    assert AuditFilter.parse("event:approved").event_type == "approved"
    assert AuditFilter.parse('unclosed "quote').text == 'unclosed "quote'
    assert AuditFilter.parse("http://x:1").text == "http://x:1"
    assert not AuditFilter.parse("  ")


@pytest.mark.sqlite_only("reads SQLite's query plan")
@pytest.mark.parametrize("sql", [audit_view.OLDER_SQL, audit_view.NEWER_SQL, audit_view.COUNT_SQL])
async def test_each_read_walks_a_range_of_the_primary_key(
    executor: ActionExecutor, db_path: Path, sql: str
) -> None:
    conn = sqlite3.connect(db_path)
    try:
        params = {
            **AuditFilter().params(),
            "floor": 1,
            "below": 2,
            "after": 1,
            "until": 2,
            "limit": 1,
        }
        wanted = {k: v for k, v in params.items() if f":{k}" in sql}
        plan = " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", wanted))
    finally:
        conn.close()
    assert "SEARCH a USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan, plan
    assert "SCAN a" not in plan, plan
