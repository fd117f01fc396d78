"""Random sequences of propose / approve / reject / cancel / run / kill / resume against a real
SQLite file, with the engine's promises checked in the database after every step.

Time is a FrozenClock the machine advances, so schedules, retries, expiry and leases move
only when a rule says so; runs are deterministic and never sleep.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.actions.retry import RetryConfig
from operator_core.clock import FrozenClock, from_db
from operator_core.db.actions import AttemptResult, Claim
from operator_core.errors import (
    ActionNotFoundError,
    InvalidTransitionError,
    ObserveOnlyError,
    OperatorError,
    WorkflowNotFoundError,
)
from operator_core.model.types import ActionStatus, WorkflowStatus
from operator_core.runner import Runner

from tests.support.subjects import TestSubject

T = TypeVar("T")

RETRY = RetryConfig(max_attempts=2, min_wait_seconds=1.0, max_wait_seconds=4.0)
HELD_RUNNER = "held-runner"
HELD_LEASE = 5.0
UNKNOWN_ID = 10_000

ACTIONS = st.sampled_from(["ok", "fail", "fail_hard", "flaky", "guarded"])
PICK = st.one_of(st.integers(min_value=0, max_value=1_000), st.just(-1))

PENDING = ("proposed", "validated")
OPEN_WORKFLOW = ("pending", "in_progress")


def frozen_executor(path: Path, clock: FrozenClock) -> ActionExecutor:
    """No approval, ``RETRY``, on ``clock``: for lease and claim races driven by hand."""
    return ActionExecutor(
        path,
        ActionRegistry.from_subject(TestSubject()),
        approval_mode=False,
        retry_config=RETRY,
        clock=clock,
    )


class ApprovingSubject(TestSubject):
    """TestSubject's actions, each requiring approval: the copy another process proposes
    through (approval mode is the database's policy, the same for every process)."""

    def action_definitions(self) -> list[Any]:
        return [
            d.model_copy(update={"requires_approval": True}) for d in super().action_definitions()
        ]


def params_for(action: str, times: int) -> dict[str, Any]:
    return {"times": times} if action == "flaky" else {}


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="operator-sm-"))
        self.path = self.dir / "machine.db"
        self.loop = asyncio.new_event_loop()
        self.clock = FrozenClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
        registry = ActionRegistry.from_subject(TestSubject())
        # Two processes' worth of executors on one file: one proposes through definitions
        # that need no approval (but for "guarded"), one through a copy where all do.
        self.plain = ActionExecutor(
            self.path,
            registry,
            approval_mode=False,
            four_eyes=False,
            retry_config=RETRY,
            clock=self.clock,
        )
        self.strict = ActionExecutor(
            self.path,
            ActionRegistry.from_subject(ApprovingSubject()),
            approval_mode=False,
            four_eyes=False,
            retry_config=RETRY,
            clock=self.clock,
        )
        self.run(self.plain.open())
        self.run(self.strict.open())
        self.raw = sqlite3.connect(self.path, isolation_level=None)
        self.raw.row_factory = sqlite3.Row
        self.ids: list[int] = []
        self.workflow_ids: list[int] = []
        self.held: list[Claim] = []

    def teardown(self) -> None:
        self.raw.close()
        self.run(self.plain.close())
        self.run(self.strict.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ helpers

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout=30))

    def expect(self, ok: bool, coro: Awaitable[T]) -> T | None:
        """Run ``coro``: it must succeed when ``ok`` and raise an OperatorError otherwise."""
        try:
            result = self.run(coro)
        except OperatorError as exc:
            assert not ok, f"unexpected refusal: {exc}"
            return None
        assert ok, "the engine allowed a change it should have refused"
        return result

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self.raw.execute(sql, params).fetchall()

    def proposal(self, pid: int) -> sqlite3.Row | None:
        found = self.rows("SELECT * FROM action_proposals WHERE id = ?", (pid,))
        return found[0] if found else None

    def workflow(self, wid: int) -> sqlite3.Row | None:
        found = self.rows("SELECT * FROM workflows WHERE id = ?", (wid,))
        return found[0] if found else None

    def pick(self, pool: list[int], index: int) -> int:
        return UNKNOWN_ID if index < 0 or not pool else pool[index % len(pool)]

    def observing(self) -> bool:
        return str(self.rows("SELECT mode FROM safety_state")[0][0]) == "observe"

    def lapsed(self, expires_at: str | None) -> bool:
        """An action whose expiry has passed is refused approval, even before the runner
        has marked it expired."""
        expiry = from_db(expires_at)
        return expiry is not None and expiry <= self.clock.now()

    def record_count(self) -> int:
        return int(self.rows("SELECT COUNT(*) FROM action_records")[0][0])

    # ------------------------------------------------------------------ proposing

    @rule(
        action=ACTIONS,
        strict=st.booleans(),
        times=st.integers(1, 3),
        schedule_in=st.sampled_from([None, None, 1.0, 5.0]),
        expires_in=st.sampled_from([None, None, 3.0]),
        max_retries=st.sampled_from([None, 0, 1, 2]),
    )
    def propose(
        self,
        action: str,
        strict: bool,
        times: int,
        schedule_in: float | None,
        expires_in: float | None,
        max_retries: int | None,
    ) -> None:
        executor = self.strict if strict else self.plain
        before = int(self.rows("SELECT COUNT(*) FROM action_proposals")[0][0])
        try:
            p = self.run(
                executor.propose_action(
                    action,
                    params_for(action, times),
                    f"machine proposes {action}",
                    schedule_in=schedule_in,
                    expires_in=expires_in,
                    max_retries=max_retries,
                )
            )
        except ObserveOnlyError:
            assert self.observing()
            assert int(self.rows("SELECT COUNT(*) FROM action_proposals")[0][0]) == before
            return
        assert not self.observing()
        assert p.id is not None
        assert p.status == ActionStatus.VALIDATED
        assert p.requires_approval == (strict or action == "guarded")
        self.ids.append(p.id)

    @rule(
        steps=st.lists(st.sampled_from(["ok", "ok", "fail", "flaky"]), min_size=1, max_size=3),
        strict=st.booleans(),
        delay=st.sampled_from([0.0, 2.0]),
    )
    def propose_workflow(self, steps: list[str], strict: bool, delay: float) -> None:
        executor = self.strict if strict else self.plain
        recs = [
            {"action_name": s, "parameters": params_for(s, 1), "delay_seconds": delay}
            for s in steps
        ]
        try:
            wid = self.run(executor.propose_workflow("machine workflow", "chain", recs))
        except ObserveOnlyError:
            assert self.observing()
            return
        self.workflow_ids.append(wid)
        step_ids = [
            int(r["id"])
            for r in self.rows(
                "SELECT id FROM action_proposals WHERE workflow_id = ? ORDER BY execution_order",
                (wid,),
            )
        ]
        assert len(step_ids) == len(steps)
        self.ids.extend(step_ids)

    # ------------------------------------------------------------------ decisions

    @rule(index=PICK, awaiting_only=st.booleans())
    def approve(self, index: int, awaiting_only: bool) -> None:
        pool = self.ids
        if awaiting_only:
            pool = [
                int(r[0])
                for r in self.rows(
                    "SELECT id FROM action_proposals WHERE requires_approval = 1 AND "
                    "approved_at IS NULL AND status IN ('proposed', 'validated') AND "
                    "workflow_id IS NULL"
                )
            ]
        pid = self.pick(pool, index)
        p = self.proposal(pid)
        ok = (
            p is not None
            and p["workflow_id"] is None
            and bool(p["requires_approval"])
            and p["approved_at"] is None
            and p["rejected_at"] is None
            and p["status"] in PENDING
            and not self.lapsed(p["expires_at"])
        )
        self.expect(ok, self.plain.approve_proposal(pid, "approver@host"))
        if ok:
            assert self.proposal(pid)["approved_by"] == "approver@host"  # type: ignore[index]

    @rule(index=PICK)
    def reject(self, index: int) -> None:
        pid = self.pick(self.ids, index)
        p = self.proposal(pid)
        ok = (
            p is not None
            and p["workflow_id"] is None
            and p["approved_at"] is None
            and p["rejected_at"] is None
            and p["status"] in PENDING
        )
        self.expect(ok, self.plain.reject_proposal(pid, "approver@host", "not today"))
        if ok:
            after = self.proposal(pid)
            assert after is not None and after["status"] == "cancelled"

    @rule(index=PICK)
    def cancel(self, index: int) -> None:
        pid = self.pick(self.ids, index)
        p = self.proposal(pid)
        if p is None:
            ok = False
        elif p["workflow_id"] is not None:
            wf = self.workflow(p["workflow_id"])
            ok = wf is not None and wf["status"] in OPEN_WORKFLOW
        else:
            ok = p["status"] in (*PENDING, "executing") or (
                p["status"] == "failed" and p["next_retry_at"] is not None
            )
        self.expect(ok, self.plain.cancel_proposal(pid, "operator@host"))

    @rule(index=PICK)
    def approve_workflow(self, index: int) -> None:
        wid = self.pick(self.workflow_ids, index)
        wf = self.workflow(wid)
        ok = (
            wf is not None
            and bool(wf["requires_approval"])
            and wf["status"] == "pending"
            and wf["approved_at"] is None
            and wf["rejected_at"] is None
        )
        self.expect(ok, self.plain.approve_workflow(wid, "approver@host"))
        if ok:
            waiting = self.rows(
                "SELECT id FROM action_proposals WHERE workflow_id = ? AND status IN "
                "('proposed', 'validated') AND approved_at IS NULL",
                (wid,),
            )
            assert waiting == []

    @rule(index=PICK)
    def reject_workflow(self, index: int) -> None:
        wid = self.pick(self.workflow_ids, index)
        wf = self.workflow(wid)
        ok = (
            wf is not None
            and wf["status"] == "pending"
            and wf["approved_at"] is None
            and wf["rejected_at"] is None
        )
        self.expect(ok, self.plain.reject_workflow(wid, "approver@host", "wrong plan"))

    @rule(index=PICK)
    def cancel_workflow(self, index: int) -> None:
        wid = self.pick(self.workflow_ids, index)
        wf = self.workflow(wid)
        ok = wf is not None and wf["status"] in OPEN_WORKFLOW
        self.expect(ok, self.plain.cancel_workflow(wid, "operator@host"))

    # ------------------------------------------------------------------ execution

    @rule()
    def run_runner(self) -> None:
        """One pass of the real runner until nothing is executing or due."""
        records = self.record_count()
        observing = self.observing()

        async def go() -> None:
            runner = Runner(
                self.plain,
                concurrency=3,
                lease_seconds=30,
                poll_interval=0.05,
                grace_seconds=5,
                runner_id="machine-runner",
            )
            await runner.run(until_idle=True)

        self.run(go())
        if observing:
            assert self.record_count() == records, "a runner executed work in OBSERVE mode"

    @rule(index=PICK)
    def execute_one(self, index: int) -> None:
        pid = self.pick(self.ids, index)
        ready = {p.id for p in self.run(self.plain.db.list_ready())}
        ok = pid in ready and not self.observing()
        self.expect(ok, self.plain.execute_proposal(pid, runner_id="inline-runner"))

    @rule(limit=st.integers(1, 2))
    def claim_and_hold(self, limit: int) -> None:
        """A runner that claims work and is still busy with it (or about to die)."""
        claims = self.run(self.plain.db.claim_ready(HELD_RUNNER, limit, HELD_LEASE))
        if self.observing():
            assert claims == []
        self.held.extend(claims)

    @precondition(lambda self: bool(self.held))
    @rule()
    def finish_held(self) -> None:
        """The busy runner finishes its attempts the way Runner does: a stop request first."""
        claims, self.held = self.held, []
        for claim in claims:
            pid = claim.proposal.id
            assert pid is not None
            row = self.proposal(pid)
            open_record = self.rows(
                "SELECT 1 FROM action_records WHERE id = ? AND completed_at IS NULL",
                (claim.record.id,),
            )
            still_ours = (
                row is not None
                and row["status"] == "executing"
                and row["claimed_by"] == HELD_RUNNER
                and bool(open_record)
            )
            stops = self.run(self.plain.db.stop_requested(HELD_RUNNER))
            if pid in stops:
                self.expect(
                    still_ours, self.plain.db.cancel_attempt(claim, HELD_RUNNER, stops[pid])
                )
            else:
                self.expect(still_ours, self.plain.run_claim(claim, HELD_RUNNER))

    @rule(seconds=st.sampled_from([0.5, 2.0, 10.0]))
    def advance_time(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # ------------------------------------------------------------------ safety

    @rule(actor=st.sampled_from(["killer@host", "oncall@host"]), pull=st.integers(0, 3))
    def kill(self, actor: str, pull: int) -> None:
        if pull != 0 and not self.held:
            return  # rarer than other steps, or every run would spend most of its time killed
        pending = {
            int(r["id"])
            for r in self.rows(
                "SELECT id FROM action_proposals WHERE status IN ('proposed', 'validated') OR "
                "(status = 'failed' AND next_retry_at IS NOT NULL)"
            )
        }
        executing = {
            int(r["id"])
            for r in self.rows("SELECT id FROM action_proposals WHERE status = 'executing'")
        }
        result = self.run(self.plain.kill_switch(actor))
        assert set(result.cancelled_actions) == pending
        assert set(result.executing_signalled) == executing
        assert self.observing()
        assert (
            self.rows(
                "SELECT id FROM action_proposals WHERE status IN ('proposed', "
                "'validated') OR next_retry_at IS NOT NULL"
            )
            == []
        )
        assert (
            self.rows("SELECT id FROM workflows WHERE status IN ('pending', 'in_progress')") == []
        )

    @rule(actor=st.sampled_from(["ops@host", "oncall@host"]))
    def resume(self, actor: str) -> None:
        was_observing = self.observing()
        statuses = self.rows("SELECT id, status FROM action_proposals ORDER BY id")
        changed = self.run(self.plain.resume(actor))
        assert changed == was_observing
        assert not self.observing()
        assert [
            tuple(r) for r in self.rows("SELECT id, status FROM action_proposals ORDER BY id")
        ] == [tuple(r) for r in statuses], "resume revived something"

    # ------------------------------------------------------------------ invariants

    @invariant()
    def never_runs_unapproved(self) -> None:
        bad = self.rows(
            "SELECT p.id FROM action_proposals p JOIN action_records r ON r.proposal_id = p.id"
            " WHERE p.requires_approval = 1 AND (p.approved_at IS NULL OR "
            "r.started_at < p.approved_at)"
        )
        assert bad == [], f"executed without approval: {[r[0] for r in bad]}"
        early = self.rows(
            "SELECT p.id FROM action_proposals p JOIN action_records r ON r.proposal_id = p.id"
            " WHERE r.attempt = 1 AND p.scheduled_at IS NOT NULL AND "
            "r.started_at < p.scheduled_at"
        )
        assert early == [], f"ran before its scheduled time: {[r[0] for r in early]}"
        for event in self.rows(
            "SELECT proposal_id, event_data FROM action_audit_log "
            "WHERE event_type = 'retry_scheduled'"
        ):
            data = json.loads(event["event_data"])
            retry = self.rows(
                "SELECT started_at FROM action_records WHERE proposal_id = ? AND attempt = ?",
                (event["proposal_id"], int(data["retry_count"]) + 1),
            )
            if retry:
                assert retry[0][0] >= data["next_retry_at"], (
                    f"action {event['proposal_id']} retried before its backoff"
                )

    @invariant()
    def records_match_states(self) -> None:
        events: dict[int, set[str]] = {}
        for r in self.rows(
            "SELECT proposal_id, event_type FROM action_audit_log WHERE proposal_id IS NOT NULL"
        ):
            events.setdefault(int(r[0]), set()).add(str(r[1]))
        records: dict[int, list[sqlite3.Row]] = {}
        for r in self.rows("SELECT * FROM action_records ORDER BY proposal_id, id"):
            records.setdefault(int(r["proposal_id"]), []).append(r)

        for p in self.rows("SELECT * FROM action_proposals"):
            pid, status = int(p["id"]), str(p["status"])
            recs = records.get(pid, [])
            seen = events.get(pid, set())
            label = f"action {pid} ({status}, events {sorted(seen)})"
            # A workflow step is proposed by its workflow's own 'workflow_created' event.
            assert "proposed" in seen or p["workflow_id"] is not None, label
            assert [int(r["attempt"]) for r in recs] == list(range(1, len(recs) + 1)), label
            for earlier, later in zip(recs, recs[1:], strict=False):
                assert earlier["completed_at"] is not None, label
                assert later["started_at"] >= earlier["completed_at"], label
            open_records = [r for r in recs if r["completed_at"] is None]
            if status == "executing":
                assert len(open_records) == 1 and p["claimed_by"], label
                assert "execution_started" in seen, label
                continue
            assert open_records == [], f"{label}: an attempt is still open"
            assert p["claimed_by"] is None and p["lease_expires_at"] is None, label
            successes = [r for r in recs if r["success"]]
            if status == "completed":
                assert len(successes) == 1 and recs[-1]["success"], label
                assert "completed" in seen, label
            else:
                assert successes == [], f"{label}: succeeded but not completed"
            if status == "failed":
                assert recs, label
                if p["next_retry_at"] is None:
                    assert seen & {"failed", "retry_exhausted"}, label
                else:
                    assert "retry_scheduled" in seen, label
                    assert int(p["retry_count"]) <= int(p["max_retries"]), label
            if status == "cancelled":
                assert seen & {"cancelled", "rejected", "expired"}, label
                assert p["next_retry_at"] is None, label
                if recs and str(recs[-1]["error_message"] or "").startswith("cancelled:"):
                    assert "cancelled" in seen, label
            if status in PENDING:
                assert recs == [] or p["retry_count"] > 0, label

    @invariant()
    def workflows_are_consistent(self) -> None:
        killed: set[int] = set()
        for r in self.rows(
            "SELECT event_data FROM action_audit_log WHERE event_type = 'kill_switch'"
        ):
            killed.update(json.loads(r[0])["cancelled_workflows"])
        wf_events: dict[int, set[str]] = {}
        for r in self.rows(
            "SELECT workflow_id, event_type FROM action_audit_log "
            "WHERE workflow_id IS NOT NULL AND proposal_id IS NULL"
        ):
            wf_events.setdefault(int(r[0]), set()).add(str(r[1]))
        for wf in self.rows("SELECT * FROM workflows"):
            wid, status = int(wf["id"]), WorkflowStatus(wf["status"])
            steps = self.rows(
                "SELECT * FROM action_proposals WHERE workflow_id = ? ORDER BY execution_order",
                (wid,),
            )
            seen = wf_events.get(wid, set())
            label = f"workflow {wid} ({status.value}, events {sorted(seen)})"
            assert "workflow_created" in seen, label
            for prev, step in zip(steps, steps[1:], strict=False):
                assert step["depends_on_proposal_id"] == prev["id"], label
                started = self.rows(
                    "SELECT MIN(started_at) FROM action_records WHERE proposal_id = ?",
                    (step["id"],),
                )[0][0]
                if started is not None:
                    assert prev["status"] == "completed", f"{label}: step ran out of order"
                    done = self.rows(
                        "SELECT completed_at FROM action_records WHERE "
                        "proposal_id = ? AND success = 1",
                        (prev["id"],),
                    )[0][0]
                    assert started >= done, f"{label}: step overlapped its predecessor"
                    due = from_db(done) + timedelta(seconds=float(step["delay_seconds"]))
                    assert from_db(started) >= due, f"{label}: step ignored its delay"
            step_states = [str(s["status"]) for s in steps]
            if status == WorkflowStatus.COMPLETED:
                assert set(step_states) == {"completed"}, label
                assert "workflow_completed" in seen, label
            elif status == WorkflowStatus.FAILED:
                assert "workflow_failed" in seen, label
                assert any(s["status"] == "failed" and s["next_retry_at"] is None for s in steps), (
                    label
                )
            elif status == WorkflowStatus.CANCELLED:
                assert "workflow_cancelled" in seen or wid in killed, label
            if status not in (WorkflowStatus.PENDING, WorkflowStatus.IN_PROGRESS):
                waiting = [
                    s["id"]
                    for s in steps
                    if s["status"] in PENDING or s["next_retry_at"] is not None
                ]
                assert waiting == [], f"{label}: steps still waiting {waiting}"

    @invariant()
    def counts_add_up_and_audit_verifies(self) -> None:
        counts = self.run(self.plain.db.counts())
        open_only = self.run(self.plain.db.counts(by_status=False))
        assert open_only.by_status == {}
        assert {**vars(open_only), "by_status": counts.by_status} == vars(counts)
        total = int(self.rows("SELECT COUNT(*) FROM action_proposals")[0][0])
        assert sum(counts.by_status.values()) == total
        assert total == len(self.ids)
        assert counts.executing == len(
            self.rows("SELECT id FROM action_proposals WHERE status = 'executing'")
        )
        ok, checked, message = self.run(self.plain.auditor.verify())
        assert ok, message
        assert checked == int(self.rows("SELECT COUNT(*) FROM action_audit_log")[0][0])


EngineMachine.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineStateMachine = EngineMachine.TestCase


async def test_unknown_targets_raise_named_errors(tmp_path: Path) -> None:
    """The machine's 'unknown id' branch expects these named errors, not a crash."""
    ex = ActionExecutor(
        tmp_path / "x.db", ActionRegistry.from_subject(TestSubject()), approval_mode=False
    )
    async with ex:
        with pytest.raises(ActionNotFoundError):
            await ex.approve_proposal(UNKNOWN_ID, "a")
        with pytest.raises(ActionNotFoundError):
            await ex.cancel_proposal(UNKNOWN_ID, "a")
        with pytest.raises(WorkflowNotFoundError):
            await ex.approve_workflow(UNKNOWN_ID, "a")


async def test_stale_claim_cannot_finish_an_action_reclaimed_after_its_lease(
    tmp_path: Path,
) -> None:
    """A runner stalled past its lease is recovered ('runner lost') and later re-claims the
    action; its old attempt finishing must not complete the action over the new one."""
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    ex = frozen_executor(tmp_path / "stale.db", clock)
    async with ex:
        p = await ex.propose_action("ok", {}, "stalls")
        [old] = await ex.db.claim_ready("runner-a", 1, lease_seconds=5)
        clock.advance(10)
        assert await ex.db.recover_expired_leases(lambda _: 1.0) == [p.id]
        clock.advance(2)
        [new] = await ex.db.claim_ready("runner-a", 1, lease_seconds=5)
        with pytest.raises(InvalidTransitionError):
            await ex.run_claim(old, "runner-a")
        assert (await ex.db.get_proposal(p.id)).status == ActionStatus.EXECUTING  # type: ignore[arg-type, union-attr]
        outcome = await ex.run_claim(new, "runner-a")
        assert outcome.success
        records = await ex.db.list_records(p.id)  # type: ignore[arg-type]
        assert [(r.attempt, r.success) for r in records] == [(1, False), (2, True)]
        assert all(r.completed_at is not None for r in records)


async def test_a_stale_claim_in_a_batch_is_skipped_and_the_rest_are_recorded(
    tmp_path: Path,
) -> None:
    """The runner records its finished attempts in one transaction; one of them having gone
    stale must neither lose the others nor leave a gap or a fork in the audit chain."""
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    ex = frozen_executor(tmp_path / "batch.db", clock)
    async with ex:
        first = await ex.propose_action("ok", {}, "goes stale")
        [stale] = await ex.db.claim_ready("runner-a", 1, lease_seconds=5)
        clock.advance(10)
        assert await ex.db.recover_expired_leases(lambda _: 1.0) == [first.id]
        second = await ex.propose_action("ok", {}, "fresh")
        third = await ex.propose_action("ok", {}, "fresh too")
        fresh = await ex.db.claim_ready("runner-a", 2, lease_seconds=5)
        assert {c.proposal.id for c in fresh} == {second.id, third.id}
        ok = AttemptResult(True, {})
        await ex.db.finish_and_claim(
            "runner-a", [(fresh[0], ok), (stale, ok), (fresh[1], ok)], 0, 5
        )
        statuses = {
            pid: (await ex.db.get_proposal(pid)).status  # type: ignore[union-attr]
            for pid in (first.id, second.id, third.id)
        }
        assert statuses == {
            first.id: ActionStatus.FAILED,
            second.id: ActionStatus.COMPLETED,
            third.id: ActionStatus.COMPLETED,
        }
        completed = [e for e in await ex.db.list_audit_events() if e.event_type == "completed"]
        assert sorted(e.proposal_id for e in completed) == sorted([second.id, third.id])
        assert (await ex.db.verify_audit_chain())[0]
