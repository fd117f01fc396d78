"""Proposing a workflow: an ordered chain of actions, approved once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from operator_core.actions import limits
from operator_core.actions.definitions import ActionDefinition
from operator_core.actions.executor_base import ExecutorBase
from operator_core.db.actions import AuditEntry
from operator_core.errors import ValidationError
from operator_core.identity import actor_text
from operator_core.model.types import (
    ActionProposal,
    ActionRecommendation,
    ActionStatus,
    ActionType,
)


class WorkflowProposing(ExecutorBase):
    """Every step validated, then the workflow and all its steps stored at once."""

    async def propose_workflow(
        self,
        name: str,
        description: str,
        action_recommendations: Sequence[ActionRecommendation | dict[str, Any]],
        ticket_id: int | None = None,
        *,
        proposed_by: str = "agent",
        expires_in: float | None = None,
    ) -> int:
        """Validate every step, then store the workflow and all its steps at once (or
        nothing). Approving the workflow approves every step. Returns the workflow id."""
        limits.text(name, "a workflow name", "name")
        limits.text(description, "a workflow description", "description")
        limits.text(proposed_by, "proposed_by", "proposed_by")
        if not isinstance(action_recommendations, Sequence) or isinstance(
            action_recommendations, str
        ):
            raise ValidationError("a workflow's steps are a list of actions", "step")
        if not action_recommendations:
            raise ValidationError("a workflow must contain at least one action", "step")
        await self._check_ticket(ticket_id)
        now = self.db.clock.now()
        expiry = self._resolve_time(None, expires_in, "expiry")
        steps = []
        needs = False
        for i, rec in enumerate(action_recommendations, start=1):
            try:
                step, definition = self._workflow_step(rec, description)
            except ValidationError as exc:
                raise type(exc)(f"step {i}: {exc}", exc.parameter) from exc
            needs = needs or self._needs_approval(definition)
            steps.append(
                step.model_copy(
                    update=dict(
                        ticket_id=ticket_id,
                        proposed_at=now,
                        proposed_by=proposed_by,
                        validated_at=now,
                        expires_at=expiry,
                    )
                )
            )
        return await self.db.create_workflow(
            name,
            description,
            steps,
            ticket_id,
            requires_approval=needs,
            proposed_by=proposed_by,
            require_execute=True,
            identity=self.identity,
            audit=[
                AuditEntry(
                    "workflow_created",
                    {
                        "name": name,
                        "action_count": len(steps),
                        "steps": [s.action_name for s in steps],
                        "requires_approval": needs,
                    },
                    actor_text(proposed_by, self._identity.text),
                ),
            ],
        )

    def _workflow_step(
        self, rec: ActionRecommendation | dict[str, Any], description: str
    ) -> tuple[ActionProposal, ActionDefinition]:
        """One step of a workflow, checked field by field (a dict, or a recommendation that
        may have been built without validation)."""
        if not isinstance(rec, ActionRecommendation):
            if not isinstance(rec, dict):
                raise ValidationError(
                    f"a step is a mapping or an ActionRecommendation, got {rec!r}", "step"
                )
            try:
                rec = ActionRecommendation(**rec)
            except PydanticValidationError as exc:
                error = exc.errors()[0]
                field = ".".join(str(part) for part in error["loc"]) or "step"
                raise ValidationError(f"{field}: {error['msg']}", field) from None
            except TypeError as exc:
                raise ValidationError(str(exc), "step") from None
        definition, params = self._validate(rec.action_name, rec.parameters)
        reason = rec.reason or description
        limits.text(reason, "the reason", "reason")
        delay = limits.delay_seconds(rec.delay_seconds, "delay", "delay_seconds")
        step = ActionProposal(
            action_name=rec.action_name,
            action_type=ActionType.SUBJECT,
            parameters=params,
            reason=reason,
            status=ActionStatus.VALIDATED,
            delay_seconds=delay,
            max_retries=self._max_retries(definition, rec.max_retries),
        )
        return step, definition
