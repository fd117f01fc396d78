"""Running a claimed attempt through the subject, with its time limit and retries."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from operator_core.actions import limits
from operator_core.actions.definitions import ActionDefinition
from operator_core.actions.executor_base import ExecutorBase
from operator_core.actions.fingerprint import ApprovalVoided, explain
from operator_core.actions.subject import ExecutionContext, ProcessInfo
from operator_core.db import executions as execution_db
from operator_core.db import fingerprints as fingerprint_db
from operator_core.db.actions import AttemptResult, Claim
from operator_core.errors import ActionFailed, DatabaseError, InvalidTransitionError
from operator_core.model.types import ActionProposal

_log = logging.getLogger("operator.executor")


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    proposal_id: int
    success: bool
    error: str | None = None
    next_retry_at: datetime | None = None
    result_data: dict[str, Any] | None = None


class Executing(ExecutorBase):
    """Claim, execute, record; the backoff before a retry."""

    def retry_delay(
        self, definition: ActionDefinition | None, retry_count: int, proposal_id: int | None = None
    ) -> float:
        """Backoff before retry number ``retry_count`` (0-based), with the action's overrides;
        for an automation's proposal whose node set a first delay, doubling from that."""
        config = self._retry_config
        first = self._node_backoff.pop(proposal_id, None) if proposal_id is not None else None
        if first is not None:
            delay = first * 2.0**retry_count
            return min(max(delay, 0.0), limits.MAX_DELAY_SECONDS)
        if definition is not None and (
            definition.retry_min_wait_seconds is not None
            or definition.retry_max_wait_seconds is not None
        ):
            config = dataclasses.replace(
                config,
                min_wait_seconds=(
                    config.min_wait_seconds
                    if definition.retry_min_wait_seconds is None
                    else definition.retry_min_wait_seconds
                ),
                max_wait_seconds=(
                    config.max_wait_seconds
                    if definition.retry_max_wait_seconds is None
                    else definition.retry_max_wait_seconds
                ),
            )
        delay = config.delay_seconds(retry_count)
        # Whatever the configuration says, a wait the runner can turn into a time.
        if not 0.0 <= delay <= limits.MAX_DELAY_SECONDS:
            return limits.MAX_DELAY_SECONDS if delay > limits.MAX_DELAY_SECONDS else 0.0
        return delay

    async def execute_proposal(
        self, proposal_id: int, runner_id: str = "inline", lease_seconds: float = 60.0
    ) -> Outcome:
        """Run one ready action now, in this process (claim, execute, record)."""
        p = await self.require_proposal(proposal_id)
        await self._safety.check_can_execute()
        claims = await self.db.claim_ready(runner_id, 1, lease_seconds, only_id=proposal_id)
        if not claims:
            if p.awaiting_approval:
                raise InvalidTransitionError(f"action {proposal_id} is awaiting approval")
            raise InvalidTransitionError(
                f"action {proposal_id} is not ready to run (status {p.status.value}"
                f"{', scheduled' if p.scheduled_at else ''}"
                f"{', waiting for its previous step' if p.depends_on_proposal_id else ''})"
            )
        return await self.run_claim(claims[0], runner_id)

    async def run_claim(self, claim: Claim, runner_id: str) -> Outcome:
        """Execute a claimed attempt and record its outcome. Cancellation (kill switch,
        shutdown) propagates to the caller, who records it."""
        await self.check_approval(claim, runner_id)
        result = await self.perform(claim)
        next_at = await asyncio.shield(self.db.record_attempt(claim, runner_id, result))
        assert claim.proposal.id is not None
        return Outcome(claim.proposal.id, result.success, result.error, next_at, result.result_data)

    async def check_approval(self, claim: Claim, runner_id: str) -> None:
        """Before an approved attempt starts (the first and every retry): what it would run
        now must be what was approved. If not, it does not start: in one transaction the
        attempt is recorded as not run with the reason and the action goes back to awaiting
        approval (ApprovalVoided; nothing more to record). An approval from before
        approvals were bound, or an action this runner does not offer (``perform`` fails
        it), is not checked here."""
        p = claim.proposal
        if p.approved_at is None or p.id is None:
            return  # the hot path: nothing approved, nothing to compare
        bound = await self.db.read(fingerprint_db.binding, p.id)
        if bound.sha256 is None or bound.canonical is None:
            return
        now = self.fingerprints.of(p.action_name, p.parameters)
        if now is None or now.sha256 == bound.sha256:
            return
        reason = explain(bound.canonical, now)
        try:
            await self.db.write(
                fingerprint_db.void_tx,
                claim,
                runner_id,
                reason,
                bound.sha256,
                now.sha256,
                self.db.clock.now_text(),
            )
        except InvalidTransitionError as exc:
            raise ApprovalVoided(f"action {p.id} did not start: {exc}") from None
        _log.warning("action %s did not start, approval voided: %s", p.id, reason)
        raise ApprovalVoided(f"action {p.id} did not start: {reason}; it awaits approval again")

    def attempt_timeout(self, proposal: ActionProposal) -> float | None:
        """The time limit of one attempt of ``proposal`` (None: its action is not offered)."""
        definition = self._registry.get_definition(proposal.action_name)
        return None if definition is None else definition.timeout_seconds

    async def _process_started(self, record_id: int | None, info: ProcessInfo) -> None:
        """Keep where an attempt's command runs. A failure to write it does not stop the
        command: the record then says nothing of its processes, as before."""
        if record_id is None:
            return
        try:
            await self.db.set_attempt_process(record_id, *info)
        except DatabaseError as exc:
            _log.warning(
                "could not record process group %s of attempt %s: %s", info.pgid, record_id, exc
            )

    def timed_out(self, claim: Claim) -> AttemptResult:
        """The outcome of an attempt stopped by its time limit: a retryable failure."""
        p = claim.proposal
        definition = self._registry.get_definition(p.action_name)
        assert definition is not None
        return AttemptResult(
            False,
            None,
            f"timed out after {definition.timeout_seconds:g}s",
            True,
            self.retry_delay(definition, p.retry_count, p.id),
        )

    async def _automation_of(self, p: ActionProposal) -> str | None:
        """The automation whose run made ``p`` (its own secrets come first, its node's retry
        delay is noted for ``retry_delay``), from the columns only the engine writes: an
        actor merely named ``automation:...`` gets nothing."""
        if p.id is None or not p.proposed_by.startswith(execution_db.AUTOMATION_ACTOR):
            return None  # the hot path: no read for the rest
        origin = await self.db.read(execution_db.proposal_origin, p.id)
        if origin is None:
            return None
        if origin.retry_initial_delay is not None:
            self._node_backoff[p.id] = origin.retry_initial_delay
        return origin.automation

    async def perform(self, claim: Claim, *, enforce_timeout: bool = True) -> AttemptResult:
        """Run a claimed attempt through the subject with the action's timeout; write nothing.
        Any exception is a retryable failure unless the subject says otherwise. Without
        ``enforce_timeout`` the caller keeps the time (the runner, one timer for all its
        attempts), cancels the attempt when it runs out and reports ``timed_out(claim)``."""
        p = claim.proposal
        definition = self._registry.get_definition(p.action_name)
        subject = self._registry.subject
        if definition is None or subject is None:
            return AttemptResult(
                False,
                error=f"action '{p.action_name}' is not offered by the loaded subject",
                retryable=False,
            )
        ticket = await self.db.get_ticket(p.ticket_id) if p.ticket_id else None
        context = ExecutionContext(
            proposal=p,
            attempt=claim.record.attempt,
            timeout_seconds=definition.timeout_seconds,
            ticket=ticket,
            automation=await self._automation_of(p),
            process_started=functools.partial(self._process_started, claim.record.id),
        )
        try:
            if enforce_timeout:
                async with asyncio.timeout(definition.timeout_seconds):
                    result = await subject.execute(p.action_name, dict(p.parameters), context)
            else:
                result = await subject.execute(p.action_name, dict(p.parameters), context)
        except TimeoutError:
            return self.timed_out(claim)
        except ActionFailed as exc:
            error, retryable, data = str(exc), exc.retryable, exc.result_data
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error, retryable, data = f"{type(exc).__name__}: {exc}", True, None
        else:
            self._node_backoff.pop(p.id, None)
            return AttemptResult(True, result)
        return AttemptResult(
            False,
            data,
            error,
            retryable,
            self.retry_delay(definition, p.retry_count, p.id) if retryable else None,
        )

    async def schedule_next_retry(self, proposal_id: int, error_message: str) -> datetime | None:
        """Count a failure and schedule the next attempt with backoff and jitter; None once
        the proposal's own max_retries is spent (it is then failed for good)."""
        p = await self.require_proposal(proposal_id)
        definition = self._registry.get_definition(p.action_name)
        return await self.db.schedule_retry(
            proposal_id, error_message, self.retry_delay(definition, p.retry_count, p.id)
        )
