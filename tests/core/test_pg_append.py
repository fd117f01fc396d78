"""A proposal in one statement on PostgreSQL (db/pg/append.py): the server's hash of each
event is ``event_hash``'s, whatever the fields hold, and the statement keeps every rule of
the step-by-step insert (OBSERVE refused, approval mode held, an agent's budget), run here
on both backends with the rows and the chain read back."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operator_core.actions.executor import ActionExecutor
from operator_core.anchor.chain import GENESIS_HASH, event_hash
from operator_core.db import audit
from operator_core.db.agent_budgets import AgentBudgetError
from operator_core.db.pg import append
from operator_core.db.pg.connection import PgDatabase
from operator_core.db.pg.txn import BEGIN_READ, BEGIN_WRITE
from operator_core.db.records import AuditEntry
from operator_core.errors import ObserveOnlyError
from operator_core.model.types import ActionProposal, ActionStatus

from tests.support.rows import database_of, rows

NOW = "2026-12-03T10:00:00.000000Z"

# Text as a column holds it: anything but NUL (PostgreSQL's text refuses it) and lone
# surrogates (not UTF-8); the JSON of event data escapes both, so it takes any text.
column_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
nasty = st.sampled_from(['"', "\\", "\\u0000", "'", "\n", "\x01", "é", "雪", "🚀", "%s", "']"])
any_text = st.lists(st.one_of(st.text(), nasty), max_size=4).map("".join)
ids = st.one_of(st.none(), st.integers(min_value=0, max_value=2**63 - 1))
event_data = st.dictionaries(
    any_text, st.one_of(any_text, st.integers(), st.none(), st.lists(any_text, max_size=3))
)


@given(
    head=st.text("0123456789abcdef", min_size=64, max_size=64),
    proposal_id=st.integers(min_value=1, max_value=2**63 - 1),
    workflow_id=ids,
    event_type=column_text,
    data=st.text(),
    actor=column_text,
    timestamp=column_text,
)
def test_the_tail_completes_event_hash(
    head: str,
    proposal_id: int,
    workflow_id: int | None,
    event_type: str,
    data: str,
    actor: str,
    timestamp: str,
) -> None:
    """The text the server hashes, with Python's sha256: the same hex as event_hash."""
    tail = append.hash_tail(workflow_id, event_type, data, actor, timestamp)
    text = '["' + head + '",' + str(proposal_id) + tail
    assert hashlib.sha256(text.encode()).hexdigest() == event_hash(
        head, proposal_id, workflow_id, event_type, data, actor, timestamp
    )


def _proposal(reason: str, proposed_by: str, parameters: dict[str, Any]) -> ActionProposal:
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    return ActionProposal(
        action_name="ok",
        parameters=parameters,
        reason=reason,
        status=ActionStatus.VALIDATED,
        proposed_at=now,
        proposed_by=proposed_by,
        validated_at=now,
        requires_approval=False,
    )


@pytest.fixture
def pg_db(pg_url: str) -> Any:
    db = PgDatabase(pg_url)
    yield db
    db.close_sync()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=event_data,
    parameters=event_data,
    reason=column_text,
    actor=column_text,
    event_type=column_text,
    workflow_id=ids,
)
def test_the_servers_hash_is_event_hash_and_the_chain_verifies(
    pg_db: PgDatabase,
    data: dict[str, Any],
    parameters: dict[str, Any],
    reason: str,
    actor: str,
    event_type: str,
    workflow_id: int | None,
) -> None:
    head = pg_db.run_txn(BEGIN_READ, audit.head)
    entry = AuditEntry(event_type, data, actor, None, workflow_id)
    stored, appended = pg_db.run_txn(
        BEGIN_WRITE,
        audit.noting,
        append.store_proposal,
        _proposal(reason, actor, parameters),
        [entry],
        "me@host",
        NOW,
        True,
    )
    row = pg_db.run_txn(
        BEGIN_READ,
        lambda c: c.execute("SELECT * FROM action_audit_log ORDER BY id DESC").fetchone(),
    )
    assert (row["proposal_id"], row["workflow_id"], row["prev_hash"]) == (
        stored.id,
        workflow_id,
        head,
    )
    assert (row["event_type"], row["actor"], row["timestamp"]) == (event_type, actor, NOW)
    assert row["hash"] == event_hash(
        head, stored.id, workflow_id, event_type, row["event_data"], actor, NOW
    )
    assert appended == (row["id"], row["hash"], (event_type,))  # noting needed no read
    ok, _, message = pg_db.run_txn(BEGIN_READ, audit.verify_chain)
    assert ok, message


def test_the_first_event_chains_to_genesis(pg_db: PgDatabase) -> None:
    entry = AuditEntry("proposed", {"reason": "r"}, "me")
    stored = pg_db.run_txn(
        BEGIN_WRITE, append.store_proposal, _proposal("r", "me", {}), [entry], "me", NOW, True
    )
    (row,) = pg_db.run_txn(
        BEGIN_READ, lambda c: c.execute("SELECT * FROM action_audit_log").fetchall()
    )
    assert (row["id"], row["proposal_id"], row["prev_hash"]) == (1, stored.id, GENESIS_HASH)
    assert pg_db.run_txn(BEGIN_READ, audit.verify_chain) == (True, 1, "1 events, chain intact")


# ---------------------------------------------------------------------- the rules, both backends


def _events(ex: ActionExecutor) -> list[tuple[Any, ...]]:
    return [
        (r["proposal_id"], r["event_type"])
        for r in rows(database_of(ex.db), "SELECT * FROM action_audit_log ORDER BY id")
    ]


def _proposals(ex: ActionExecutor) -> list[tuple[Any, ...]]:
    return [
        (r["id"], r["reason"], r["requires_approval"])
        for r in rows(database_of(ex.db), "SELECT * FROM action_proposals ORDER BY id")
    ]


async def _verified(ex: ActionExecutor) -> None:
    ok, _, message = await ex.auditor.verify()
    assert ok, message


async def test_a_proposal_under_observe_is_refused_and_leaves_no_trace(
    make_executor: Callable[..., Any],
) -> None:
    ex = await make_executor()
    await ex.safety.set_mode("observe", "ana", "maintenance")
    before = _events(ex)
    with pytest.raises(ObserveOnlyError) as refused:
        await ex.propose_action("ok", {}, "during maintenance")
    assert "ana" in str(refused.value) and "maintenance" in str(refused.value)
    assert _proposals(ex) == [] and _events(ex) == before
    await ex.safety.set_mode("execute", "ana")
    p = await ex.propose_action("ok", {}, "after")
    # The refusal took no id: the next proposal is the first, as on SQLite.
    assert p.id == 1 and _proposals(ex) == [(1, "after", 0)]
    assert _events(ex)[-1] == (1, "proposed")
    await _verified(ex)


async def test_the_approval_mode_holds_what_a_stale_proposer_sent(
    make_executor: Callable[..., Any],
) -> None:
    stale = await make_executor()  # opened while approval mode was off
    admin = await make_executor(approval_mode=None)
    free = await stale.propose_action("ok", {}, "before")
    await admin.set_policy("approval_mode", True, "lead")
    held = await stale.propose_action("ok", {}, "during")
    assert (free.requires_approval, held.requires_approval) == (False, True)
    assert _proposals(stale) == [(free.id, "before", 0), (held.id, "during", 1)]
    events = await stale.auditor.get_events(held.id)
    assert [(e.event_type, e.event_data["requires_approval"]) for e in events] == [
        ("proposed", True)
    ]
    assert (await stale.db.get_proposal(held.id)).approved_at is None
    await _verified(stale)


async def test_an_agent_over_its_budget_is_refused_and_the_refusal_audited(
    make_executor: Callable[..., Any],
) -> None:
    ex = await make_executor()
    await ex.set_agent_budget("claude", 1, 600, [], "ana")
    first = await ex.propose_action("ok", {}, "one", proposed_by="agent:claude")
    with pytest.raises(AgentBudgetError, match="1 of 1 proposals per 10m used"):
        await ex.propose_action("ok", {}, "two", proposed_by="agent:claude")
    assert _proposals(ex) == [(first.id, "one", 0)]
    assert _events(ex)[-2:] == [(first.id, "proposed"), (None, "agent_proposal_refused")]
    await _verified(ex)


@pytest.mark.parametrize("count", [1, 2, 40])
async def test_many_proposals_at_once_take_ids_in_order_with_their_events(
    make_executor: Callable[..., Any], count: int
) -> None:
    """propose_actions: every row in the order given (PostgreSQL sends the inserts in one
    pipeline), each event naming its own row, the chain intact, a NOTIFY-worthy change."""
    ex = await make_executor()
    first = await ex.propose_action("ok", {}, "before")
    items = [{"action_name": "ok", "reason": f"item {i}"} for i in range(count)]
    stored = await ex.propose_actions(items)
    assert [p.id for p in stored] == list(range(first.id + 1, first.id + 1 + count))
    assert _proposals(ex)[1:] == [(p.id, f"item {i}", 0) for i, p in enumerate(stored)]
    assert _events(ex)[-count:] == [(p.id, "proposed") for p in stored]
    await _verified(ex)
