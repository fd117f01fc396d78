"""Execution budgets at claim time, on a real database with a frozen clock: at most ``runs``
attempts of an action start in any window of ``per``; the rest wait for the next slot,
which the runner's wake-up and the readers see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from operator_core.actions.definitions import ActionDefinition, ExecutionBudget
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.clock import FrozenClock, short

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _registry(runs: int = 3, per: float = 3600) -> ActionRegistry:
    return ActionRegistry(
        [
            ActionDefinition(name="restart", budget=ExecutionBudget(runs=runs, per_seconds=per)),
            ActionDefinition(name="check"),
        ]
    )


@pytest.fixture
async def ex(db_path: Path) -> ActionExecutor:
    executor = ActionExecutor(db_path, _registry(), clock=FrozenClock(T0), approval_mode=False)
    await executor.open()
    yield executor  # type: ignore[misc]
    await executor.close()


def _clock(ex: ActionExecutor) -> FrozenClock:
    clock = ex.db.clock
    assert isinstance(clock, FrozenClock)
    return clock


async def test_a_claim_starts_no_more_than_the_budget_and_the_rest_wait(
    ex: ActionExecutor,
) -> None:
    ids = [(await ex.propose_action("restart", {}, f"r{i}")).id for i in range(10)]
    check = (await ex.propose_action("check", {}, "unbudgeted")).id

    # Leases past the window: the next slot is the only time to wake for.
    claims = await ex.db.claim_ready("r1", 20, 7200)
    started = sorted(c.proposal.id for c in claims if c.proposal.action_name == "restart")
    assert started == ids[:3]  # first due first
    assert check in {c.proposal.id for c in claims}  # other actions are not held back
    assert await ex.db.claim_ready("r2", 20, 7200) == []  # spent, for every runner

    waits = await ex.db.budget_waits()
    assert waits["restart"].next_slot_at == _clock(ex).now().replace(hour=13)
    assert waits["restart"].used == 3
    assert waits["restart"].describe(T0) == "budget: next slot in 1h00m"
    # The runner sleeps until then, not a moment less (nothing else is due).
    assert await ex.db.next_wakeup() == T0.replace(hour=13)

    _clock(ex).advance(3599)
    assert await ex.db.claim_ready("r1", 20, 60) == []
    _clock(ex).advance(1)
    again = await ex.db.claim_ready("r1", 20, 60)
    assert sorted(c.proposal.id for c in again) == ids[3:6]

    events = [e for e in await ex.db.list_audit_events(limit=200) if e.event_type == "budget_spent"]
    assert len(events) == 2  # once per window that filled up, not once per claim
    assert events[0].event_data["action"] == "restart"


async def test_a_retry_is_an_execution_too(db_path: Path) -> None:
    ex = ActionExecutor(db_path, _registry(runs=2), clock=FrozenClock(T0), approval_mode=False)
    async with ex:
        first = await ex.propose_action("restart", {}, "one", max_retries=3)
        (claim,) = await ex.db.claim_ready("r1", 5, 60)
        await ex.db.fail_attempt(claim, "r1", "boom", retryable=True, retry_delay_seconds=0)
        (retry,) = await ex.db.claim_ready("r1", 5, 60)
        assert retry.proposal.id == first.id and retry.record.attempt == 2
        await ex.propose_action("restart", {}, "two")
        assert await ex.db.claim_ready("r1", 5, 60) == []


async def test_a_budget_with_a_free_slot_again_waits_for_nothing(db_path: Path) -> None:
    ex = ActionExecutor(db_path, _registry(runs=1, per=60), clock=FrozenClock(T0))
    async with ex:
        await ex.propose_action("restart", {}, "one")
        assert len(await ex.db.claim_ready("r1", 5, 60)) == 1
        assert "restart" in await ex.db.budget_waits()
        _clock(ex).advance(61)
        assert await ex.db.claim_ready("r1", 5, 60) == []
        assert await ex.db.budget_waits() == {}
        assert await ex.db.next_wakeup() is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "1s"), (45, "45s"), (192, "3m12s"), (720, "12m"), (7500, "2h05m")],
)
def test_waits_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert short(seconds) == text


@pytest.mark.parametrize(
    ("budget", "says"),
    [
        ('{ runs = 3, per = "0" }', "field 'budget.per': a window must be longer than zero"),
        ('{ runs = 0, per = "1h" }', "field 'budget.runs': must be an integer from 1"),
        ('{ runs = 3.5, per = "1h" }', "field 'budget.runs': must be an integer from 1"),
        ("{ runs = 3 }", "field 'budget.per': missing"),
        ("{ runs = 3, per = 3600 }", "field 'budget.per': must be a string"),
        ('{ runs = 3, per = "soon" }', "field 'budget.per': cannot read 'soon'"),
        ('{ runs = 3, per = "40d" }', "field 'budget.per': a window can be at most 31d"),
        ('{ runs = 3, per = "1h", burst = 2 }', "field 'budget.burst': unknown key"),
        ('"3/h"', "field 'budget': must be a table"),
    ],
)
def test_a_bad_budget_in_a_runbook_is_one_line_at_load_time(
    tmp_path: Path, budget: str, says: str
) -> None:
    from operator_core.errors import ConfigError
    from operator_core.subjects.runbook_file import parse_runbook

    book = tmp_path / "runbook.toml"
    book.write_text(f'[actions.restart]\nargv = ["true"]\nbudget = {budget}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        parse_runbook(book)
    message = str(caught.value)
    assert "\n" not in message and f"action 'restart': {says}" in message, message


def test_a_runbook_budget_reaches_the_definition_and_the_agents_catalog(tmp_path: Path) -> None:
    from operator_core.agents.catalog import catalog
    from operator_core.subjects.loader import load_subject

    book = tmp_path / "runbook.toml"
    book.write_text(
        '[actions.restart]\nargv = ["true"]\nbudget = { runs = 3, per = "1h" }\n'
        '[actions.look]\nargv = ["true"]\n',
        encoding="utf-8",
    )
    registry = ActionRegistry.from_subject(load_subject(f"commands:{book}"))
    assert registry.budgets() == {"restart": (3, 3600.0)}
    entries = {e["name"]: e for e in catalog(registry, False)}
    assert entries["restart"]["execution_budget"] == "3 per 1h"
    assert entries["look"]["execution_budget"] is None


async def test_attempts_from_before_the_upgrade_count_against_the_budget(db_path: Path) -> None:
    """A version-12 database upgraded mid-window: its recent attempts are stamped, so the
    first claim after the upgrade still counts them."""
    import sqlite3

    from operator_core.clock import to_db, utcnow
    from operator_core.db.schema import MIGRATIONS

    conn = sqlite3.connect(db_path, isolation_level=None)
    for step in MIGRATIONS[:12]:
        step(conn)
    started = to_db(utcnow() - timedelta(minutes=10))
    conn.execute(
        "INSERT INTO action_proposals (action_name, action_type, parameters, reason, status, "
        "proposed_at, proposed_by, requires_approval) "
        "VALUES ('restart', 'subject', '{}', 'old', 'completed', ?, 'x', 0)",
        (started,),
    )
    conn.execute(
        "INSERT INTO action_records (proposal_id, attempt, started_at, completed_at, success) "
        "VALUES (1, 1, ?, ?, 1)",
        (started, started),
    )
    conn.execute("PRAGMA user_version = 12")
    conn.close()
    async with ActionExecutor(db_path, _registry(runs=1), approval_mode=False) as ex:
        await ex.propose_action("restart", {}, "new")
        assert await ex.db.claim_ready("r1", 5, 60) == []
        assert (await ex.db.budget_waits())["restart"].used == 1
