"""The history of finished work (``db/history.py``): newest first, paged by keyset through
idx_history, searched within a bound, on a real SQLite file filled through the executor."""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.db import history

from tests.support.rows import rows

FINISHED_SQL = """
SELECT id FROM action_proposals WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC
"""


async def _fill(ex: ActionExecutor) -> dict[str, list[int]]:
    """Completed, failed, cancelled and rejected actions, and one still waiting."""
    made: dict[str, list[int]] = {"ok": [], "fail": [], "cancel": [], "reject": []}
    for i in range(7):
        p = await ex.propose_action("ok", {"seconds": 0}, reason=f"routine {i}")
        await ex.execute_proposal(p.id or 0, runner_id="r1")
        made["ok"].append(p.id or 0)
    for _ in range(2):
        p = await ex.propose_action("fail_hard", {}, reason="known to break", proposed_by="bot-7")
        await ex.execute_proposal(p.id or 0, runner_id="r1")
        made["fail"].append(p.id or 0)
    p = await ex.propose_action("ok", {"seconds": 0}, reason="not needed after all")
    await ex.cancel_proposal(p.id or 0, "alice")
    made["cancel"].append(p.id or 0)
    p = await ex.propose_action("guarded", {}, reason="risky")
    await ex.reject_proposal(p.id or 0, "bob", "not during the freeze")
    made["reject"].append(p.id or 0)
    await ex.propose_action("guarded", {}, reason="waits")
    return made


async def _page(ex: ActionExecutor, *args: object) -> history.HistoryPage:
    return await ex.db.read(history.page, *args)


async def test_pages_walk_every_finished_action_newest_first_once(
    executor: ActionExecutor, db_path: Path
) -> None:
    made = await _fill(executor)
    expected = [r[0] for r in rows(db_path, FINISHED_SQL)]
    assert sorted(expected) == sorted(i for ids in made.values() for i in ids)
    seen: list[int] = []
    below = history.TOP
    pages = 0
    while True:
        page = await _page(executor, below, 3)
        pages += 1
        assert len(page.items) <= 3
        seen += [f.proposal.id for f in page.items]
        if page.next is None:
            break
        below = page.next
    assert seen == expected
    assert pages == 4  # 11 rows, 3 a page
    first = (await _page(executor, history.TOP, 100)).items
    attempts = {f.proposal.id: f.attempts for f in first}
    assert all(attempts[i] == 1 for i in made["ok"] + made["fail"])
    assert attempts[made["cancel"][0]] == 0 and attempts[made["reject"][0]] == 0


async def test_a_search_matches_action_parameters_proposer_reason_and_error(
    executor: ActionExecutor,
) -> None:
    made = await _fill(executor)

    async def found(needle: str) -> set[int]:
        page = await _page(executor, history.TOP, 100, needle)
        assert page.next is None
        return {f.proposal.id or 0 for f in page.items}

    assert await found("FAIL_HARD") == set(made["fail"])  # the action, any case
    assert await found("bot-7") == set(made["fail"])  # the proposer
    assert await found("routine 3") == {made["ok"][3]}  # the reason
    assert await found("freeze") == set(made["reject"])  # the rejection's reason
    assert await found('"seconds"') == set(made["ok"] + made["cancel"])
    errors = await found("permanent failure")
    assert errors == set(made["fail"])
    assert await found("no such words anywhere") == set()


async def test_a_search_stops_at_its_budget_and_goes_on_from_there(
    executor: ActionExecutor, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rare word never scans the whole history in one read: the read stops after the
    budget, says where, and the next read goes on below."""
    made = await _fill(executor)
    monkeypatch.setattr(history, "SEARCH_CHUNK", 2)
    monkeypatch.setattr(history, "SEARCH_BUDGET", 4)
    order = [r[0] for r in rows(db_path, FINISHED_SQL)]
    found: list[int] = []
    below = history.TOP
    reads = 0
    while below is not None:
        page = await _page(executor, below, 100, "bot-7")
        reads += 1
        assert page.searched <= 4
        found += [f.proposal.id or 0 for f in page.items]
        below = page.next
    assert found == [i for i in order if i in made["fail"]]
    assert reads >= 3  # 11 rows, at most 4 tested a read


@pytest.mark.sqlite_only("SQLite's query plan (EXPLAIN QUERY PLAN)")
@pytest.mark.parametrize("sql", [history.PAGE_SQL, history.SEARCH_SQL])
async def test_history_reads_walk_idx_history_without_sorting(
    executor: ActionExecutor, db_path: Path, sql: str
) -> None:
    await _fill(executor)
    params = {"at": "~", "id": 0, "limit": 10, "needle": "x"}
    plan = " | ".join(str(r[3]) for r in rows(db_path, "EXPLAIN QUERY PLAN " + sql, params))
    assert "idx_history" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
