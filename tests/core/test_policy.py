"""Approval policy belongs to the database, identity to the OS, and the runner has the last
word on what may start (issue 20, items 4, 9 and 10). Real SQLite files, real runners."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionDefinition, ActionRegistry
from operator_core.clock import FrozenClock
from operator_core.db.policy import PolicyConflictError
from operator_core.env import env_flag, parse_bool
from operator_core.errors import ApprovalError, ConfigError
from operator_core.identity import current_identity
from operator_core.model.types import ActionStatus, WorkflowStatus

from tests.support.rows import PgTarget, rows
from tests.support.subjects import TestSubject
from tests.support.wait import running, wait_for

ME = current_identity().text


class StrictSubject(TestSubject):
    """The same actions as TestSubject, but this copy of the "runbook" says ``ok`` needs
    approval (another runner's definitions)."""

    def action_definitions(self) -> list[ActionDefinition]:
        return [
            d.model_copy(update={"requires_approval": True}) if d.name == "ok" else d
            for d in super().action_definitions()
        ]


def _row(ex: ActionExecutor, sql: str, *args: Any) -> tuple[Any, ...]:
    """The first row of ``sql`` on ``ex``'s database, either backend."""
    url = getattr(ex.db, "url", None)
    return tuple(rows(PgTarget(url, Path()) if url else ex.db_path, sql, args)[0])


async def _events(ex: ActionExecutor, pid: int) -> list[tuple[str, str]]:
    return [
        (e.event_type, e.actor) for e in await ex.db.list_audit_events(proposal_id=pid, limit=100)
    ]


# ---------------------------------------------------------------------- on/off settings


@pytest.mark.parametrize("word", ["1", "true", "YES", " on ", "On", "tRuE"])
def test_every_documented_word_for_on_reads_as_on(word: str) -> None:
    assert parse_bool(word, "X") is True


@pytest.mark.parametrize("word", ["0", "false", "No", " off ", "OFF"])
def test_every_documented_word_for_off_reads_as_off(word: str) -> None:
    assert parse_bool(word, "X") is False


@pytest.mark.parametrize("word", ["enabled", "y", "required", "2", "onn", "disabled"])
def test_an_unknown_word_is_an_error_never_off(word: str, monkeypatch) -> None:
    with pytest.raises(ConfigError, match="OPERATOR_APPROVAL_MODE must be on or off"):
        parse_bool(word, "OPERATOR_APPROVAL_MODE")
    monkeypatch.setenv("OPERATOR_READ_ONLY", word)
    with pytest.raises(ConfigError, match="OPERATOR_READ_ONLY"):
        env_flag("OPERATOR_READ_ONLY")


async def test_approval_mode_enabled_in_the_environment_is_refused_not_read_as_off(
    db_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OPERATOR_APPROVAL_MODE", "enabled")
    with pytest.raises(ConfigError, match="OPERATOR_APPROVAL_MODE"):
        ActionExecutor(db_path, ActionRegistry.from_subject(TestSubject()))
    assert not db_path.exists()


# ---------------------------------------------------------------------- database policy


async def test_the_first_executor_seeds_the_policy_and_it_is_audited(make_executor) -> None:
    ex = await make_executor(approval_mode=True, four_eyes=True)
    policy = await ex.policy()
    assert (policy.approval_mode, policy.four_eyes, policy.changed_by) == (True, True, ME)
    seeded = [e for e in await ex.db.list_audit_events() if e.event_type == "policy_seeded"]
    assert [(e.event_data, e.actor) for e in seeded] == [
        ({"approval_mode": "on", "four_eyes": "on"}, ME)
    ]


async def test_a_process_without_the_setting_follows_the_database(make_executor) -> None:
    await make_executor(approval_mode=True, four_eyes=True)
    other = await make_executor(approval_mode=None)  # its environment says nothing
    assert other.approval_mode is True and other.four_eyes is True
    p = await other.propose_action("ok", {}, "r")
    assert p.requires_approval
    assert _row(other, "SELECT requires_approval FROM action_proposals")[0] == 1


@pytest.mark.parametrize(("stored", "asked"), [(True, False), (False, True)])
async def test_a_request_that_disagrees_with_the_database_is_refused(
    make_executor, stored: bool, asked: bool
) -> None:
    await make_executor(approval_mode=stored)
    with pytest.raises(PolicyConflictError, match="operator policy set approval-mode"):
        await make_executor(approval_mode=asked)
    with pytest.raises(PolicyConflictError, match="operator policy set four-eyes on"):
        await make_executor(approval_mode=None, four_eyes=True)


async def test_changing_the_policy_is_an_audited_write_every_process_sees(
    make_executor,
) -> None:
    ex = await make_executor()
    assert await ex.set_policy("approval_mode", True, "lead", "change freeze")
    assert not await ex.set_policy("approval_mode", True, "lead")
    later = await make_executor(approval_mode=None)
    assert later.approval_mode is True
    changed = [e for e in await ex.db.list_audit_events() if e.event_type == "policy_changed"]
    assert [(e.event_data, e.actor) for e in changed] == [
        (
            {"setting": "approval-mode", "from": "off", "to": "on", "reason": "change freeze"},
            f"{ME} (lead)",
        )
    ]


async def test_a_stale_view_of_the_policy_still_stores_what_the_database_says(
    make_executor,
) -> None:
    stale = await make_executor()  # opened while approval mode was off
    admin = await make_executor(approval_mode=None)
    await admin.set_policy("approval_mode", True, "lead")
    assert stale._policy is not None and stale._policy.approval_mode is False
    p = await stale.propose_action("ok", {}, "r")
    assert p.requires_approval
    [one] = await stale.propose_actions([{"action_name": "ok", "reason": "r"}])
    assert one.requires_approval
    wf = await stale.propose_workflow("w", "d", [{"action_name": "ok"}])
    assert (await stale.db.get_workflow(wf)).requires_approval


# ---------------------------------------------------------------------- identity, four-eyes


async def test_four_eyes_compares_os_identities_not_labels(make_executor) -> None:
    ex = await make_executor(approval_mode=True, four_eyes=True)
    p = await ex.propose_action("ok", {}, "r", proposed_by="alice")
    for label in ("bob", "alice ", "Alice", "alice", ME):
        with pytest.raises(ApprovalError, match="four-eyes"):
            await ex.approve_proposal(p.id, label)
    assert (await ex.db.get_proposal(p.id)).approved_at is None


async def test_four_eyes_holds_for_a_process_whose_environment_lacks_it(
    make_executor,
) -> None:
    await make_executor(approval_mode=True, four_eyes=True)
    other = await make_executor(approval_mode=None, four_eyes=None)
    p = await other.propose_action("ok", {}, "r", proposed_by="agent")
    with pytest.raises(ApprovalError, match="four-eyes"):
        await other.approve_proposal(p.id, "someone-else")


async def test_four_eyes_lets_another_person_approve_and_records_both(make_executor) -> None:
    ex = await make_executor(approval_mode=True, four_eyes=True)
    p = await ex.propose_action("ok", {}, "r", proposed_by="agent")
    me = current_identity()
    # The same account in another case, with spaces, on another host: the same person.
    with pytest.raises(ApprovalError, match="four-eyes"):
        await ex.db.approve_proposal(p.id, "x", identity=f" {me.user.upper()} @elsewhere")
    approved = await ex.db.approve_proposal(p.id, "bob", identity="bob@ops-box")
    assert approved.approved_by == "bob"
    assert _row(
        ex,
        "SELECT proposed_by, proposed_identity, approved_identity FROM "
        "action_proposals WHERE id = ?",
        p.id,
    ) == ("agent", ME, "bob@ops-box")
    assert await _events(ex, p.id) == [
        ("proposed", f"{ME} (agent)"),
        ("approved", "bob@ops-box (bob)"),
    ]


async def test_four_eyes_applies_to_workflows(make_executor) -> None:
    ex = await make_executor(approval_mode=True, four_eyes=True)
    wf = await ex.propose_workflow("w", "d", [{"action_name": "ok"}], proposed_by="alice")
    with pytest.raises(ApprovalError, match="four-eyes"):
        await ex.approve_workflow(wf, "bob")
    done = await ex.db.approve_workflow(wf, "carol", identity="carol@ops")
    assert done.approved_by == "carol"
    assert _row(ex, "SELECT proposed_identity, approved_identity FROM workflows") == (
        ME,
        "carol@ops",
    )


async def test_rejections_and_cancels_record_the_os_identity(make_executor) -> None:
    ex = await make_executor(approval_mode=True)
    a = await ex.propose_action("ok", {}, "r")
    b = await ex.propose_action("ok", {}, "r")
    await ex.reject_proposal(a.id, "bob", "no")
    await ex.cancel_proposal(b.id, "bob")
    wf = await ex.propose_workflow("w", "d", [{"action_name": "ok"}])
    await ex.reject_workflow(wf, "bob", "no")
    assert _row(
        ex,
        "SELECT rejected_by, rejected_identity, cancelled_identity FROM "
        "action_proposals WHERE id = ?",
        a.id,
    ) == ("bob", ME, ME)
    assert _row(
        ex,
        "SELECT cancelled_by, cancelled_identity FROM action_proposals WHERE id = ?",
        b.id,
    ) == ("bob", ME)
    assert _row(ex, "SELECT rejected_by, rejected_identity FROM workflows") == ("bob", ME)
    assert ("cancelled", f"{ME} (bob)") in await _events(ex, b.id)


async def test_the_kill_switch_resume_and_tickets_record_the_os_identity(make_executor) -> None:
    ex = await make_executor()
    await ex.open_ticket("disk full", actor="pager")
    await ex.kill_switch("bob")
    await ex.resume("bob")
    actors = {e.event_type: e.actor for e in await ex.db.list_audit_events(limit=50)}
    assert actors["kill_switch"] == f"{ME} (bob)"
    assert actors["safety_mode_changed"] == f"{ME} (bob)"
    assert actors["ticket_opened"] == f"{ME} (pager)"
    assert (await ex.db.get_safety_mode())[2] == f"{ME} (bob)"


# ---------------------------------------------------------------------- expiry at approval


async def test_approving_after_expiry_is_refused_and_expires_it(db_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    async with ActionExecutor(
        db_path, ActionRegistry.from_subject(TestSubject()), approval_mode=True, clock=clock
    ) as ex:
        p = await ex.propose_action("ok", {}, "r", expires_in=60)
        wf = await ex.propose_workflow("w", "d", [{"action_name": "ok"}], expires_in=60)
        clock.advance(61)  # no runner was up to expire them
        with pytest.raises(ApprovalError, match="expired"):
            await ex.approve_proposal(p.id, "bob")
        with pytest.raises(ApprovalError, match="expired"):
            await ex.approve_workflow(wf, "bob")
        gone = await ex.db.get_proposal(p.id)
        assert (gone.status, gone.cancel_reason, gone.approved_at) == (
            ActionStatus.CANCELLED,
            "expired",
            None,
        )
        assert (await ex.db.get_workflow(wf)).status == WorkflowStatus.CANCELLED
        assert "expired" in [t for t, _ in await _events(ex, p.id)]


# ---------------------------------------------------------------------- the claim's last look


async def test_the_runner_holds_what_its_own_definitions_require_approval_for(
    make_executor,
) -> None:
    lax = await make_executor()  # proposed through a copy that does not require approval
    p = await lax.propose_action("ok", {}, "r")
    assert not p.requires_approval
    strict = await make_executor(subject=StrictSubject())
    async with running(strict):
        await wait_for(lambda: _requires_approval(strict, p.id))
    held = await strict.db.get_proposal(p.id)
    assert held.status == ActionStatus.VALIDATED and held.claimed_by is None
    assert held.awaiting_approval
    assert await strict.db.list_records(p.id) == []
    [event] = [
        e
        for e in await strict.db.list_audit_events(proposal_id=p.id)
        if e.event_type == "approval_required"
    ]
    assert event.event_data["reason"] == "its definition on this runner requires approval"
    assert "execution_started" not in [t for t, _ in await _events(strict, p.id)]
    await strict.db.approve_proposal(p.id, "bob", identity="bob@ops")
    async with running(strict):
        await wait_for(lambda: _status_is(strict, p.id, "completed"))


async def test_turning_approval_mode_on_holds_what_was_proposed_without_it(
    make_executor,
) -> None:
    ex = await make_executor()
    p = await ex.propose_action("ok", {}, "r", schedule_in=0.2)
    await ex.set_policy("approval_mode", True, "lead")
    async with running(ex):
        await wait_for(lambda: _requires_approval(ex, p.id))
    assert await ex.db.list_records(p.id) == []
    [event] = [
        e
        for e in await ex.db.list_audit_events(proposal_id=p.id)
        if e.event_type == "approval_required"
    ]
    assert event.event_data["reason"] == "the database's approval mode is on"


async def test_a_retry_is_held_too_when_approval_mode_is_turned_on(make_executor) -> None:
    ex = await make_executor()
    p = await ex.propose_action("flaky", {"times": 1}, "r", max_retries=3)
    async with running(ex):
        await wait_for(lambda: _retry_waiting(ex, p.id))
        await ex.set_policy("approval_mode", True, "lead")
        await wait_for(lambda: _requires_approval(ex, p.id))
    held = await ex.db.get_proposal(p.id)
    assert held.retry_count == 1 and held.next_retry_at is None
    assert [r.attempt for r in await ex.db.list_records(p.id)] == [1]


async def test_an_older_database_gets_a_policy_from_its_first_opener(db_path: Path) -> None:
    from operator_core.db.schema import MIGRATIONS

    conn = sqlite3.connect(db_path, isolation_level=None)
    for version, step in enumerate(MIGRATIONS[:4], start=1):
        step(conn)
        conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(
        "INSERT INTO action_proposals (action_name, parameters, reason, status, "
        "proposed_at, proposed_by, requires_approval) VALUES ('ok', '{}', 'r', "
        "'validated', '2026-01-01T00:00:00.000000Z', 'alice', 1)"
    )
    conn.close()
    async with ActionExecutor(
        db_path, ActionRegistry.from_subject(TestSubject()), four_eyes=True
    ) as ex:
        policy = await ex.policy()
        assert (policy.approval_mode, policy.four_eyes) == (False, True)
        # Recorded before identities were: the proposer's label is all there is.
        with pytest.raises(ApprovalError, match="four-eyes"):
            await ex.db.approve_proposal(1, "x", identity="Alice@other-box")
        assert (await ex.db.approve_proposal(1, "bob", identity="bob@ops")).approved_at


async def test_a_held_workflow_step_makes_the_workflow_wait_for_approval(
    make_executor,
) -> None:
    lax = await make_executor()
    wf = await lax.propose_workflow(
        "w", "d", [{"action_name": "flaky", "parameters": {"times": 0}}, {"action_name": "ok"}]
    )
    strict = await make_executor(subject=StrictSubject())
    steps = await strict.db.list_workflow_actions(wf)
    async with running(strict):  # step 1 needs no approval anywhere and runs; step 2 does
        await wait_for(lambda: _requires_approval(strict, steps[1].id))
    assert await _status_is(strict, steps[0].id, "completed")
    w = await strict.db.get_workflow(wf)
    assert w.status == WorkflowStatus.PENDING and w.requires_approval and w.approved_at is None
    assert (await strict.db.get_proposal(steps[1].id)).awaiting_approval
    await strict.db.approve_workflow(wf, "bob", identity="bob@ops")
    async with running(strict):
        await wait_for(lambda: _workflow_is(strict, wf, "completed"))


@pytest.mark.sqlite_only("edits the file with sqlite3, as an older version would have")
async def test_the_claim_never_starts_an_action_approved_after_its_expiry(
    make_executor,
) -> None:
    ex = await make_executor(approval_mode=True)
    p = await ex.propose_action("ok", {}, "r", expires_in=3600)
    conn = sqlite3.connect(ex.db_path)  # as an older version, or a clock gone wrong, left it
    conn.execute(
        "UPDATE action_proposals SET approved_at = '2999-01-01T00:00:00.000000Z', "
        "approved_by = 'bob' WHERE id = ?",
        (p.id,),
    )
    conn.commit()
    conn.close()
    assert await ex.db.claim_ready("r1", 10, 30) == []
    gone = await ex.db.get_proposal(p.id)
    assert (gone.status, gone.cancel_reason) == (ActionStatus.CANCELLED, "expired")
    assert await ex.db.list_records(p.id) == []


@pytest.mark.sqlite_only("counts statements with sqlite3's set_trace_callback")
async def test_the_claim_costs_no_extra_statement(make_executor) -> None:
    """The policy is read by the statement that already read the safety mode."""
    ex = await make_executor()
    for _ in range(3):
        await ex.propose_action("ok", {}, "r")
    seen: list[str] = []

    def trace(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(seen.append)

    await ex.db.read(trace)
    claims = await ex.db.claim_ready("r1", 10, 30)
    await ex.db.read(lambda conn: conn.set_trace_callback(None))
    assert len(claims) == 3
    policy_reads = [s for s in seen if "policy" in s]
    assert len(policy_reads) == 1 and "FROM safety_state" in policy_reads[0]


async def _requires_approval(ex: ActionExecutor, pid: int) -> bool:
    p = await ex.db.get_proposal(pid)
    return p is not None and p.awaiting_approval


async def _retry_waiting(ex: ActionExecutor, pid: int) -> bool:
    p = await ex.db.get_proposal(pid)
    return p is not None and p.is_retry_waiting


async def _status_is(ex: ActionExecutor, pid: int, status: str) -> bool:
    p = await ex.db.get_proposal(pid)
    return p is not None and p.status.value == status


async def _workflow_is(ex: ActionExecutor, wf: int, status: str) -> bool:
    w = await ex.db.get_workflow(wf)
    return w is not None and w.status.value == status
