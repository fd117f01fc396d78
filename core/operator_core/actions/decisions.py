"""Approving, rejecting and cancelling an action or a workflow: the one copy the CLI and
the dashboard share."""

from __future__ import annotations

from typing import Literal, overload

from operator_core.actions.executor_base import ExecutorBase
from operator_core.actions.fingerprint import ApprovalCheck
from operator_core.db import fingerprints as fingerprint_db
from operator_core.errors import ApprovalError, ValidationError
from operator_core.model.states import ActionStatus
from operator_core.model.types import ActionProposal, WorkflowProposal

Decision = Literal["approve", "reject", "cancel"]
TargetKind = Literal["action", "workflow"]

# What a cancel without a reason records.
CANCEL_REASON = "cancelled by operator"


def _is_workflow(kind: str) -> bool:
    if kind not in ("action", "workflow"):
        raise ValueError(f"a decision is about an action or a workflow, not {kind!r}")
    return kind == "workflow"


class Deciding(ExecutorBase):
    """A person's decision on a proposal, and the system's when it lapses."""

    @overload
    async def decide(
        self,
        decision: Decision,
        kind: Literal["action"],
        target_id: int,
        actor: str,
        reason: str | None = None,
    ) -> ActionProposal: ...

    @overload
    async def decide(
        self,
        decision: Decision,
        kind: Literal["workflow"],
        target_id: int,
        actor: str,
        reason: str | None = None,
    ) -> WorkflowProposal: ...

    @overload
    async def decide(
        self,
        decision: Decision,
        kind: TargetKind,
        target_id: int,
        actor: str,
        reason: str | None = None,
    ) -> ActionProposal | WorkflowProposal: ...

    async def decide(
        self,
        decision: Decision,
        kind: TargetKind,
        target_id: int,
        actor: str,
        reason: str | None = None,
    ) -> ActionProposal | WorkflowProposal:
        """Approve, reject or cancel an action or a workflow: what the CLI and the dashboard
        both call. A reject needs a ``reason``; a cancel without one records
        CANCEL_REASON; an approve ignores it. The transaction checks the target's state
        (and that it exists) again, so another process acting meanwhile is caught there."""
        workflow = _is_workflow(kind)
        if decision == "approve":
            p = await self._check_needs_approval(workflow, target_id)
            if p is None:
                return await self.db.approve_workflow(
                    target_id,
                    actor,
                    identity=self.identity,
                    fingerprints=await self._step_fingerprints(target_id),
                )
            return await self.db.approve_proposal(
                target_id, actor, identity=self.identity, fingerprint=self._binding_for(p)
            )
        if decision == "reject":
            if not reason or not reason.strip():
                raise ValidationError("rejecting needs a reason", "reason")
            reject = self.db.reject_workflow if workflow else self.db.reject_proposal
            return await reject(target_id, actor, reason, identity=self.identity)
        if decision == "cancel":
            cancel = self.db.cancel_workflow if workflow else self.db.cancel_proposal
            reason = CANCEL_REASON if reason is None else reason
            return await cancel(target_id, actor, reason, identity=self.identity)
        raise ValueError(f"a decision is approve, reject or cancel, not {decision!r}")

    async def _check_needs_approval(self, workflow: bool, target_id: int) -> ActionProposal | None:
        """Approving what needs no approval is an error, not a silent no-op (the
        transaction does not check this). Returns the action (None for a workflow)."""
        if workflow:
            wf = await self.require_workflow(target_id)
            if not wf.requires_approval:
                raise ApprovalError(
                    f"workflow {target_id} needs no approval; it runs as soon as it is due"
                )
            return None
        p = await self.require_proposal(target_id)
        if not p.requires_approval and p.workflow_id is None:
            raise ApprovalError(
                f"action {target_id} needs no approval; it runs as soon as it is due"
            )
        return p

    def _binding_for(self, p: ActionProposal) -> tuple[str, str]:
        """What approving ``p`` binds it to: what this process's subject would run. An
        action this process cannot render cannot be approved here (the approver would
        approve something unseen)."""
        fingerprint = self.fingerprints.of(p.action_name, p.parameters)
        if fingerprint is None:
            subject = getattr(self._registry.subject, "name", None) or "none"
            raise ApprovalError(
                f"action {p.id} ({p.action_name}) is not offered by the subject loaded here "
                f"({subject}): what it would run cannot be shown or bound to the approval; "
                "approve it with its subject loaded (--subject)"
            )
        return fingerprint.sha256, fingerprint.canonical

    async def _step_fingerprints(self, workflow_id: int) -> dict[int, tuple[str, str]]:
        """Each step a workflow's approval approves, bound to what it will run."""
        steps = await self.db.list_workflow_actions(workflow_id)
        return {
            p.id: self._binding_for(p)
            for p in steps
            if p.id is not None
            and p.approved_at is None
            and p.status in (ActionStatus.PROPOSED, ActionStatus.VALIDATED)
        }

    async def approval_check(self, proposal_id: int) -> ApprovalCheck:
        """The fingerprint an action's approval is bound to and whether what this process
        would run now still matches it (for ``actions show``, the dashboard, agents)."""
        p = await self.require_proposal(proposal_id)
        bound = await self.db.read(fingerprint_db.binding, proposal_id)
        now = self.fingerprints.of(p.action_name, p.parameters)
        return ApprovalCheck.of(bound, now, self._registry.subject is not None)

    async def approve_proposal(self, proposal_id: int, actor: str) -> ActionProposal:
        return await self.decide("approve", "action", proposal_id, actor)

    async def reject_proposal(self, proposal_id: int, actor: str, reason: str) -> ActionProposal:
        return await self.decide("reject", "action", proposal_id, actor, reason)

    async def cancel_proposal(
        self, proposal_id: int, actor: str, reason: str = CANCEL_REASON
    ) -> ActionProposal:
        return await self.decide("cancel", "action", proposal_id, actor, reason)

    async def approve_workflow(self, workflow_id: int, actor: str) -> WorkflowProposal:
        return await self.decide("approve", "workflow", workflow_id, actor)

    async def reject_workflow(self, workflow_id: int, actor: str, reason: str) -> WorkflowProposal:
        return await self.decide("reject", "workflow", workflow_id, actor, reason)

    async def cancel_workflow(
        self, workflow_id: int, actor: str, reason: str = CANCEL_REASON
    ) -> WorkflowProposal:
        return await self.decide("cancel", "workflow", workflow_id, actor, reason)

    async def expire_due(self) -> list[int]:
        return await self.db.expire_proposals()
