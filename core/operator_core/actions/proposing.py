"""Proposing actions: every argument checked, then stored with its audit event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from operator_core.actions import limits
from operator_core.actions.executor_base import ExecutorBase
from operator_core.clock import to_db
from operator_core.db.actions import AuditEntry
from operator_core.errors import ValidationError
from operator_core.identity import actor_text
from operator_core.model.types import ActionProposal, ActionStatus, ActionType


class Proposing(ExecutorBase):
    """Action proposals, one or many at once (tickets are ``tickets.Ticketing``'s)."""

    async def propose_action(
        self,
        action_name: str,
        parameters: dict[str, Any] | None = None,
        reason: str = "",
        *,
        ticket_id: int | None = None,
        proposed_by: str = "agent",
        scheduled_at: datetime | None = None,
        schedule_in: float | None = None,
        max_retries: int | None = None,
        expires_at: datetime | None = None,
        expires_in: float | None = None,
        action_type: ActionType = ActionType.SUBJECT,
    ) -> ActionProposal:
        """Validate and store a proposal. It is validated at once; it runs when approved (if
        approval is required), due, and execution is on."""
        proposal, audit = await self._prepare(
            action_name,
            parameters,
            reason,
            ticket_id=ticket_id,
            proposed_by=proposed_by,
            scheduled_at=scheduled_at,
            schedule_in=schedule_in,
            max_retries=max_retries,
            expires_at=expires_at,
            expires_in=expires_in,
            action_type=action_type,
        )
        return await self.db.create_proposal(
            proposal, [audit], require_execute=True, identity=self.identity
        )

    async def propose_actions(
        self,
        proposals: Sequence[dict[str, Any]],
        *,
        proposed_by: str = "agent",
    ) -> list[ActionProposal]:
        """Propose many independent actions at once: every one is validated first, then all
        are stored in one transaction (or none). Each item takes propose_action's arguments
        (``action_name``, ``parameters``, ``reason``, ``schedule_in``, ...)."""
        prepared = []
        for i, item in enumerate(proposals, start=1):
            try:
                args = dict(item)
                prepared.append(
                    await self._prepare(
                        args.pop("action_name"),
                        args.pop("parameters", None),
                        args.pop("reason", ""),
                        proposed_by=proposed_by,
                        **args,
                    )
                )
            except ValidationError as exc:
                raise type(exc)(f"proposal {i}: {exc}", exc.parameter) from exc
            except (KeyError, TypeError, ValueError) as exc:
                raise ValidationError(f"proposal {i}: {exc}") from exc
        return await self.db.create_proposals(
            [p for p, _ in prepared],
            [a for _, a in prepared],
            require_execute=True,
            identity=self.identity,
        )

    async def _prepare(
        self, action_name: str, parameters: dict[str, Any] | None, reason: str, **options: Any
    ) -> tuple[ActionProposal, AuditEntry]:
        """A validated proposal ready to store, with its audit event: ``build_proposal``'s
        checks (``options`` are its keywords), then that the ticket exists."""
        proposal, audit = self.build_proposal(action_name, parameters, reason, **options)
        await self._check_ticket(options.get("ticket_id"))
        return proposal, audit

    def build_proposal(
        self,
        action_name: str,
        parameters: dict[str, Any] | None,
        reason: str,
        *,
        ticket_id: int | None = None,
        proposed_by: str = "agent",
        scheduled_at: datetime | None = None,
        schedule_in: float | None = None,
        max_retries: int | None = None,
        expires_at: datetime | None = None,
        expires_in: float | None = None,
        action_type: ActionType = ActionType.SUBJECT,
    ) -> tuple[ActionProposal, AuditEntry]:
        """``_prepare`` but the ticket's existence, without waiting: what the runner's
        automation step uses inside its own transaction (the ticket is the execution's)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("a proposal needs a reason", "reason")
        limits.text(reason, "the reason", "reason")
        limits.text(proposed_by, "proposed_by", "proposed_by")
        if type(action_type) is not ActionType:
            try:
                action_type = ActionType(action_type)
            except ValueError:
                raise ValidationError(
                    f"unknown action type {action_type!r}", "action_type"
                ) from None
        definition, params = self._validate(action_name, parameters or {})
        when = self._resolve_time(scheduled_at, schedule_in, "schedule")
        expiry = self._resolve_time(expires_at, expires_in, "expiry")
        retries = self._max_retries(definition, max_retries)
        self._check_ticket_id(ticket_id)
        now = self.db.clock.now()
        proposal = ActionProposal(
            ticket_id=ticket_id,
            action_name=definition.name,
            action_type=action_type,
            parameters=params,
            reason=reason,
            status=ActionStatus.VALIDATED,
            proposed_at=now,
            proposed_by=proposed_by,
            validated_at=now,
            requires_approval=self._needs_approval(definition),
            scheduled_at=when,
            max_retries=retries,
            expires_at=expiry,
        )
        audit = AuditEntry(
            "proposed",
            {
                "action": action_name,
                "parameters": params,
                "reason": reason,
                "ticket_id": ticket_id,
                "scheduled_at": to_db(when),  # UTC with a Z, as every time Operator writes
                "validated": True,
                "requires_approval": proposal.requires_approval,
            },
            actor_text(proposed_by, self._identity.text),
        )
        return proposal, audit
