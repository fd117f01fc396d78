"""What an agent may do, without the protocol: read the catalog, open tickets, propose,
wait for a human's decision and read results. It holds an ``ActionExecutor`` whose
identity is the agent, and calls only its proposing, ticket and reading methods."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from operator_core.agents import catalog
from operator_core.errors import ValidationError
from operator_core.identity import Identity, check_agent_name, current_identity
from operator_core.model.states import ActionStatus

if TYPE_CHECKING:
    from datetime import datetime

    from operator_core.actions.executor import ActionExecutor
    from operator_core.model.types import ActionProposal, ActionRecord

# Below the 60 s many MCP clients give a tool call: a wait never outlives its call.
MAX_WAIT_SECONDS = 50.0
# How much of an attempt's output an agent gets back (the end is what explains a failure).
TAIL_CHARS = 2000
# How often a wait re-reads the database where no listener could start (no wake-ups).
POLL_SECONDS = 0.1

Progress = Callable[[float, float, str], Awaitable[None]]


class _Wake:
    """What a wait sleeps on: the database's own listener (a poke on SQLite, NOTIFY on
    PostgreSQL), so another process's commit ends the sleep at once and an idle wait costs
    the server nothing; its poll interval is the fallback for a missed wake-up."""

    def __init__(self, db: Any) -> None:
        self._listener = db.listener()
        if self._listener.start():
            self.poll = db.poll_seconds()
        else:
            self._listener = None
            self.poll = POLL_SECONDS

    async def sleep(self, seconds: float) -> None:
        if self._listener is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listener.event.wait(), seconds)
        # Cleared before the caller re-reads, so a commit after this wakes the next sleep.
        self._listener.event.clear()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()


def agent_identity(name: str) -> Identity:
    """Who an agent's proposals are recorded as: ``agent:NAME`` on this host, so the
    four-eyes rule sees the agent as the proposer (no OS account can contain a colon)."""
    me = current_identity()
    return Identity(me.uid, f"agent:{check_agent_name(name)}", me.host)


def _tail(text: Any) -> Any:
    if isinstance(text, str) and len(text) > TAIL_CHARS:
        return "..." + text[-TAIL_CHARS:]
    return text


def attempt_json(record: ActionRecord) -> dict[str, Any]:
    """One attempt, as an agent needs it: outcome, exit code or HTTP status, output tails
    (already redacted by the subject before they were stored)."""
    data = record.result_data or {}
    return {
        "attempt": record.attempt,
        "started_at": record.started_at.isoformat() if record.started_at else None,
        "completed_at": record.completed_at.isoformat() if record.completed_at else None,
        "outcome": {True: "succeeded", False: "failed", None: "running"}[record.success],
        "error": _tail(record.error_message),
        "exit_code": data.get("exit_code"),
        "http_status": data.get("status_code", data.get("http_status")),
        "stdout_tail": _tail(data.get("stdout_tail")),
        "stderr_tail": _tail(data.get("stderr_tail", data.get("body_tail"))),
        "result": {k: _tail(v) for k, v in data.items() if not k.endswith("_tail")},
    }


def proposal_json(p: ActionProposal) -> dict[str, Any]:
    return {
        "id": p.id,
        "action": p.action_name,
        "parameters": p.parameters,
        "reason": p.reason,
        "status": p.status.value,
        "awaiting_approval": p.awaiting_approval,
        "requires_approval": p.requires_approval,
        "proposed_by": p.proposed_by,
        "proposed_at": p.proposed_at.isoformat(),
        "approved_by": p.approved_by,
        "rejected_by": p.rejected_by,
        "rejection_reason": p.rejection_reason,
        "cancel_reason": p.cancel_reason,
        "ticket_id": p.ticket_id,
        "workflow_id": p.workflow_id,
        "scheduled_at": p.scheduled_at.isoformat() if p.scheduled_at else None,
        "expires_at": p.expires_at.isoformat() if p.expires_at else None,
        "retry_count": p.retry_count,
        "max_retries": p.max_retries,
        "next_retry_at": p.next_retry_at.isoformat() if p.next_retry_at else None,
        "last_error": _tail(p.last_error),
    }


class AgentGateway:
    """The agent-facing operations over one open executor."""

    def __init__(self, executor: ActionExecutor, agent: str) -> None:
        self.ex = executor
        self.agent = check_agent_name(agent)
        self.proposer = f"agent:{agent}"

    async def safety(self) -> dict[str, Any]:
        """Whether the kill switch is engaged (execution off): part of every answer."""
        mode, at, by, reason = await self.ex.db.get_safety_mode()
        engaged = mode != "execute" or self.ex.db.kill_file.engaged()
        return {
            "engaged": engaged,
            "safety_mode": mode,
            "reason": reason if engaged else None,
            "changed_by": by if engaged else None,
            "note": "nothing runs until a human resumes execution" if engaged else None,
        }

    async def _answer(self, **data: Any) -> dict[str, Any]:
        data["kill_switch"] = await self.safety()
        return data

    # ------------------------------------------------------------------ reading

    async def list_actions(self) -> dict[str, Any]:
        return await self._answer(
            actions=catalog.catalog(self.ex.registry, self.ex.approval_mode),
            four_eyes=self.ex.four_eyes,
        )

    async def get_proposal(self, proposal_id: int) -> dict[str, Any]:
        p = await self.ex.require_proposal(proposal_id)
        return await self._answer(
            proposal=proposal_json(p),
            decision=await self._decision(p),
            will_run=catalog.preview(self.ex.registry, p.action_name, p.parameters),
            approval=await self._approval(proposal_id),
        )

    async def _approval(self, proposal_id: int) -> dict[str, Any]:
        """What the approval is bound to (its SHA-256), whether what would run now still
        matches it, and why a previous approval was voided: an approval whose command
        changed does not run, and the action waits for a human again."""
        check = await self.ex.approval_check(proposal_id)
        return {
            "fingerprint_sha256": check.sha256,
            "still_matches": check.matches,
            "voided": check.voided,
        }

    async def get_result(self, proposal_id: int) -> dict[str, Any]:
        p = await self.ex.require_proposal(proposal_id)
        records = await self.ex.db.list_records(proposal_id)
        done = p.status in (ActionStatus.COMPLETED, ActionStatus.CANCELLED) or (
            p.status == ActionStatus.FAILED and p.next_retry_at is None
        )
        return await self._answer(
            id=p.id,
            status=p.status.value,
            finished=done,
            succeeded=p.status == ActionStatus.COMPLETED,
            attempts=[attempt_json(r) for r in records],
            last_error=_tail(p.last_error),
            next_retry_at=p.next_retry_at.isoformat() if p.next_retry_at else None,
            approval=await self._approval(proposal_id),
        )

    async def my_proposals(self, limit: int = 20) -> dict[str, Any]:
        mine = await self.ex.db.list_proposals_by(self.proposer, limit)
        return await self._answer(agent=self.proposer, proposals=[proposal_json(p) for p in mine])

    # ------------------------------------------------------------------ proposing

    async def open_ticket(
        self,
        title: str,
        summary: str = "",
        severity: str = "medium",
        service: str | None = None,
        team: str | None = None,
    ) -> dict[str, Any]:
        t = await self.ex.open_ticket(
            title, summary, severity, self.proposer, service=service, team=team
        )
        return await self._answer(ticket=t.model_dump(mode="json"))

    async def propose_action(
        self,
        action: str,
        parameters: dict[str, Any],
        reason: str,
        ticket_id: int | None = None,
        schedule_in_seconds: float | None = None,
        expires_in_seconds: float | None = None,
    ) -> dict[str, Any]:
        p = await self.ex.propose_action(
            action,
            parameters,
            reason,
            ticket_id=ticket_id,
            proposed_by=self.proposer,
            schedule_in=schedule_in_seconds,
            expires_in=expires_in_seconds,
        )
        return await self._answer(
            proposal=proposal_json(p),
            will_run=catalog.preview(self.ex.registry, p.action_name, p.parameters),
            next_step=(
                "call wait_for_decision with this id: a human must approve it"
                if p.awaiting_approval
                else "needs no approval: it runs when due; call get_result with this id"
            ),
        )

    async def propose_workflow(
        self,
        name: str,
        description: str,
        steps: list[dict[str, Any]],
        ticket_id: int | None = None,
    ) -> dict[str, Any]:
        recs = []
        for i, step in enumerate(steps, start=1):
            if not isinstance(step, dict) or not isinstance(step.get("action"), str):
                raise ValidationError(f"step {i} needs an 'action' name", "steps")
            recs.append(
                {
                    "action_name": step["action"],
                    "parameters": step.get("parameters") or {},
                    "delay_seconds": step.get("delay_seconds") or 0.0,
                    "reason": description,
                }
            )
        wf_id = await self.ex.propose_workflow(
            name, description, recs, ticket_id, proposed_by=self.proposer
        )
        actions = await self.ex.db.list_workflow_actions(wf_id)
        return await self._answer(
            workflow_id=wf_id,
            steps=[
                {
                    **proposal_json(p),
                    "will_run": catalog.preview(self.ex.registry, p.action_name, p.parameters),
                }
                for p in actions
            ],
            next_step="a human approves the workflow once; wait_for_decision on any step id",
        )

    # ------------------------------------------------------------------ waiting

    async def _decision(self, p: ActionProposal) -> dict[str, Any] | None:
        """The human's decision on a proposal, or None while it still waits for one."""
        if p.status == ActionStatus.CANCELLED:
            if p.rejected_at is not None:
                return {"decision": "rejected", "by": p.rejected_by, "reason": p.rejection_reason}
            kind = "expired" if p.cancel_reason == "expired" else "cancelled"
            return {"decision": kind, "reason": p.cancel_reason}
        if p.status == ActionStatus.COMPLETED or (
            p.status == ActionStatus.FAILED and p.next_retry_at is None
        ):
            return {"decision": "done", "status": p.status.value}
        if p.approved_at is not None:
            return {"decision": "approved", "by": p.approved_by}
        if p.workflow_id is not None:
            wf = await self.ex.db.get_workflow(p.workflow_id)
            if wf is not None and wf.approved_at is not None:
                return {"decision": "approved", "by": wf.approved_by}
        if not p.requires_approval:
            return {"decision": "no_approval_needed"}
        if p.expires_at is not None and p.expires_at <= self.ex.db.clock.now():
            return {"decision": "expired", "reason": "expired"}
        return None

    async def wait_for_decision(
        self, proposal_id: int, timeout_seconds: float, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Return as soon as a human decided (or it expired, was cancelled, or is done);
        else after ``timeout_seconds`` (at most MAX_WAIT_SECONDS) with decision "pending".
        The database is re-read only when another process committed something."""
        timeout = min(max(float(timeout_seconds), 0.0), MAX_WAIT_SECONDS)
        start = time.monotonic()
        wake = _Wake(self.ex.db)
        try:
            return await self._wait(proposal_id, timeout, start, wake, progress)
        finally:
            wake.stop()

    async def _wait(
        self,
        proposal_id: int,
        limit: float,
        start: float,
        wake: _Wake,
        progress: Progress | None,
    ) -> dict[str, Any]:
        seen: int | None = None
        expires: datetime | None = None
        last_note = start
        while True:
            version = await self.ex.db.data_version()
            # Expiry is a time, not a write: it is checked again once it is past.
            lapsed = expires is not None and expires <= self.ex.db.clock.now()
            if version != seen or lapsed:
                seen = version
                p = await self.ex.require_proposal(proposal_id)
                expires = p.expires_at
                decision = await self._decision(p)
                if decision is not None:
                    return await self._answer(
                        id=proposal_id,
                        status=p.status.value,
                        waited_seconds=round(time.monotonic() - start, 3),
                        **decision,
                    )
            now = time.monotonic()
            if now - start >= limit:
                return await self._answer(
                    id=proposal_id,
                    decision="pending",
                    status=p.status.value,
                    waited_seconds=round(now - start, 3),
                    next_step="still awaiting a human's approval: call wait_for_decision again",
                )
            if progress is not None and now - last_note >= 1.0:
                last_note = now
                await progress(now - start, limit, f"awaiting approval of action {proposal_id}")
            pause = min(wake.poll, limit - (now - start))
            if progress is not None:
                pause = min(pause, 1.0 - (now - last_note))
            if expires is not None:
                pause = min(pause, max((expires - self.ex.db.clock.now()).total_seconds(), 0))
            await wake.sleep(max(pause, 0.0))
