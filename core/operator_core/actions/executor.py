"""ActionExecutor: the one place that changes action state.

The CLI, the dashboard, the runner and the demo agent all go through it. Every mutation
records its actor and writes its audit event in the same transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, NoReturn, overload

from pydantic import ValidationError as PydanticValidationError

from operator_core.actions import limits
from operator_core.actions.audit import ActionAuditor
from operator_core.actions.definitions import ActionDefinition, validate_action_params
from operator_core.actions.emergency import kill_switch_on_corrupt_db
from operator_core.actions.registry import ActionRegistry
from operator_core.actions.retry import RetryConfig
from operator_core.actions.safety import SafetyController, SafetyMode
from operator_core.actions.subject import ExecutionContext, ProcessInfo
from operator_core.clock import Clock
from operator_core.db.actions import ActionDB, AttemptResult, AuditEntry, Claim
from operator_core.db.health import (
    CorruptDatabaseError,
    ForeignDatabaseError,
    is_corruption,
)
from operator_core.db.killfile import KillNotice
from operator_core.db.policy import (
    SETTINGS,
    Policy,
    check_requested,
    read_policy,
    seed_policy,
    set_setting,
)
from operator_core.env import env_bool
from operator_core.errors import (
    ActionFailed,
    ActionNotFoundError,
    ApprovalError,
    DatabaseError,
    InvalidTransitionError,
    ValidationError,
    WorkflowNotFoundError,
)
from operator_core.identity import Identity, actor_text, current_identity
from operator_core.model.types import (
    ActionProposal,
    ActionRecommendation,
    ActionStatus,
    ActionType,
    KillSwitchResult,
    Ticket,
    WorkflowProposal,
)

_log = logging.getLogger("operator.executor")


Decision = Literal["approve", "reject", "cancel"]
TargetKind = Literal["action", "workflow"]

# What a cancel without a reason records.
CANCEL_REASON = "cancelled by operator"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_workflow(kind: str) -> bool:
    if kind not in ("action", "workflow"):
        raise ValueError(f"a decision is about an action or a workflow, not {kind!r}")
    return kind == "workflow"


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    proposal_id: int
    success: bool
    error: str | None = None
    next_retry_at: datetime | None = None
    result_data: dict[str, Any] | None = None


class ActionExecutor:
    """Validates, proposes, approves, rejects, cancels, executes and retries actions."""

    def __init__(
        self,
        db_path: Path | str,
        registry: ActionRegistry,
        safety: SafetyController | None = None,
        auditor: ActionAuditor | None = None,
        approval_mode: bool | None = None,
        retry_config: RetryConfig | None = None,
        *,
        four_eyes: bool | None = None,
        clock: Clock | None = None,
        db: ActionDB | None = None,
        seed_policy: bool = True,
        identity: Identity | None = None,
    ) -> None:
        """``db``: an ActionDB of ``db_path`` to go through (opened or not; the dashboard
        reads through its own before this executor exists); by default a new one.

        Approval mode and four-eyes are the database's policy. ``approval_mode`` and
        ``four_eyes`` (None: ``OPERATOR_APPROVAL_MODE``, ``OPERATOR_FOUR_EYES``) seed a
        database that has none yet; opening one whose policy says otherwise raises
        PolicyConflictError. ``seed_policy=False`` asks for nothing (reading, cancelling,
        the kill switch: they must work whatever the environment says).

        ``identity``: who this executor records as acting, by default the OS account of
        this process. Only for fixtures and tests that stand for another person: the CLI,
        the dashboard and agents never set it (code that can write the database file is
        inside the trust boundary anyway, see the README's "Policy and identity")."""
        self.db_path = Path(db_path)
        self._registry = registry
        self._safety = safety or SafetyController()
        self._auditor = auditor or ActionAuditor()
        self._retry_config = retry_config or RetryConfig()
        self._requested: dict[str, bool | None] = {}
        if seed_policy:
            self._requested = {
                "approval_mode": (
                    env_bool("OPERATOR_APPROVAL_MODE") if approval_mode is None else approval_mode
                ),
                "four_eyes": env_bool("OPERATOR_FOUR_EYES") if four_eyes is None else four_eyes,
            }
        self._seed_policy = seed_policy
        self._policy: Policy | None = None
        self._identity = identity or current_identity()
        self.db = db if db is not None else ActionDB(self.db_path, clock=clock)
        self.db.approval_gate = self._definition_requires_approval
        self._safety.bind(self.db)
        self._auditor.bind(self.db)

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> ActionExecutor:
        """Open the database and agree with its policy (seeding it if it has none)."""
        await self.db.open()
        try:
            await self.load_policy()
        except BaseException:
            await self.db.close()
            raise
        return self

    async def load_policy(self) -> Policy:
        """Read the database's policy; seed it if unset (one write, once per database);
        refuse a request that disagrees with it."""
        policy = await self.db.read(read_policy)
        if not policy.seeded and self._seed_policy:
            policy = await self.db.write(
                seed_policy, self._requested, self._identity.text, self.db.clock.now_text()
            )
        check_requested(policy, self._requested)
        self._policy = policy
        return policy

    async def set_policy(self, setting: str, value: bool, actor: str, reason: str = "") -> bool:
        """Change one setting of the database's policy (audited); False if it already was.
        With approval mode turned on, an unapproved action is held at its next claim."""
        if setting not in SETTINGS:
            raise ValidationError(f"unknown policy setting {setting!r}", "setting")
        changed = await self.db.write(
            set_setting,
            setting,
            value,
            actor_text(actor, self.identity),
            reason,
            self.db.clock.now_text(),
        )
        await self.policy()
        return changed

    async def policy(self) -> Policy:
        """The database's policy as it is now."""
        self._policy = await self.db.read(read_policy)
        return self._policy

    def _definition_requires_approval(self, action_name: str) -> bool:
        definition = self._registry.get_definition(action_name)
        return definition is not None and definition.requires_approval

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> ActionExecutor:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def registry(self) -> ActionRegistry:
        return self._registry

    @property
    def safety(self) -> SafetyController:
        return self._safety

    @property
    def auditor(self) -> ActionAuditor:
        return self._auditor

    @property
    def retry_config(self) -> RetryConfig:
        return self._retry_config

    @property
    def identity(self) -> str:
        """Who this process is (its OS account and host): what every decision records."""
        return self._identity.text

    @property
    def approval_mode(self) -> bool:
        """The database's approval mode as last read (or as asked for, before opening)."""
        if self._policy is not None:
            return self._policy.approval_mode
        return bool(self._requested.get("approval_mode"))

    @property
    def four_eyes(self) -> bool:
        if self._policy is not None:
            return self._policy.four_eyes
        return bool(self._requested.get("four_eyes"))

    def _needs_approval(self, definition: ActionDefinition) -> bool:
        # The proposal's transaction re-reads the database's approval mode and holds it if
        # this view is stale; the runner checks again at claim.
        return self.approval_mode or definition.requires_approval

    def _max_retries(self, definition: ActionDefinition, override: int | None) -> int:
        if override is not None:
            return limits.retries(override)
        if definition.max_retries is not None:
            return limits.retries(definition.max_retries)
        return limits.retries(self._retry_config.max_attempts)

    def retry_delay(self, definition: ActionDefinition | None, retry_count: int) -> float:
        """Backoff before retry number ``retry_count`` (0-based), with the action's overrides."""
        config = self._retry_config
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

    def _validate(
        self, action_name: str, parameters: dict[str, Any]
    ) -> tuple[ActionDefinition, dict[str, Any]]:
        if not isinstance(action_name, str):
            raise ValidationError(f"an action name is a string, got {action_name!r}", "action")
        definition = self._registry.require(action_name)
        params = validate_action_params(definition, parameters or {})
        limits.parameter_values(params)
        return definition, params

    def _resolve_time(
        self, at: datetime | None, in_seconds: float | None, what: str
    ) -> datetime | None:
        """A time given either as a datetime or as seconds from now, within ten years."""
        if at is not None and in_seconds is not None:
            raise ValidationError(f"give either a {what} time or a delay, not both", what)
        if at is None and in_seconds is None:
            return None
        if at is not None and not isinstance(at, datetime):
            raise ValidationError(f"{what} time must be a datetime, got {at!r}", what)
        now = self.db.clock.now()
        if in_seconds is not None:
            seconds = limits.delay_seconds(in_seconds, f"{what} delay", what)
            return now + timedelta(seconds=seconds)
        return limits.time_ahead(at, now, f"{what} time", what) if at is not None else None

    async def _check_ticket(self, ticket_id: object) -> None:
        if ticket_id is None:
            return
        if not _is_int(ticket_id):
            raise ValidationError(f"a ticket id is a whole number, got {ticket_id!r}", "ticket")
        assert isinstance(ticket_id, int)
        # Out of SQLite's integer range is no ticket either (and cannot even be looked up).
        if not 0 < ticket_id < 2**63 or await self.db.get_ticket(ticket_id) is None:
            raise ValidationError(f"no ticket with id {ticket_id}", "ticket")

    # ------------------------------------------------------------------ proposing

    async def open_ticket(
        self, title: str, summary: str = "", severity: str = "medium", actor: str = "agent"
    ) -> Ticket:
        return await self.db.create_ticket(
            Ticket(title=title, summary=summary, severity=severity, created_at=self.db.clock.now()),
            actor_text(actor, self.identity),
        )

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
        """A validated proposal ready to store, with its audit event. Every argument is
        checked here, each with one clear ValidationError naming it."""
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
        await self._check_ticket(ticket_id)
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
                "scheduled_at": when.isoformat() if when else None,
                "validated": True,
                "requires_approval": proposal.requires_approval,
            },
            actor_text(proposed_by, self._identity.text),
        )
        return proposal, audit

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

    # ------------------------------------------------------------------ approval

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
            await self._check_needs_approval(workflow, target_id)
            approve = self.db.approve_workflow if workflow else self.db.approve_proposal
            return await approve(target_id, actor, identity=self.identity)
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

    async def _check_needs_approval(self, workflow: bool, target_id: int) -> None:
        """Approving what needs no approval is an error, not a silent no-op (the
        transaction does not check this)."""
        if workflow:
            wf = await self.require_workflow(target_id)
            if not wf.requires_approval:
                raise ApprovalError(
                    f"workflow {target_id} needs no approval; it runs as soon as it is due"
                )
            return
        p = await self.require_proposal(target_id)
        if not p.requires_approval and p.workflow_id is None:
            raise ApprovalError(
                f"action {target_id} needs no approval; it runs as soon as it is due"
            )

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

    async def require_proposal(self, proposal_id: int) -> ActionProposal:
        """The proposal, or ActionNotFoundError naming the id."""
        p = await self.db.get_proposal(proposal_id)
        if p is None:
            raise ActionNotFoundError(f"no action with id {proposal_id}")
        return p

    async def require_workflow(self, workflow_id: int) -> WorkflowProposal:
        """The workflow, or WorkflowNotFoundError naming the id."""
        wf = await self.db.get_workflow(workflow_id)
        if wf is None:
            raise WorkflowNotFoundError(f"no workflow with id {workflow_id}")
        return wf

    # ------------------------------------------------------------------ safety

    async def kill_switch(self, actor: str) -> KillSwitchResult:
        """Stop everything, whatever the database is doing: the kill file first (runners stop
        starting work and cancel what is executing within a second), then the database
        (OBSERVE mode, every pending, scheduled and retry-waiting action and open workflow
        cancelled). If the database cannot record it now (locked past the busy timeout),
        the result says so and the first process that can write catches it up. Works on an
        executor not yet opened: the file does not need the database."""
        actor = actor_text(actor, self.identity)
        kill = self.db.kill_file
        notice: KillNotice | None = None
        pulled_now, file_error = False, None
        try:
            notice, pulled_now = kill.engage(actor, self.db.clock.now())
        except OSError as exc:
            file_error = f"cannot write the kill file {kill.path}: {exc.strerror}"
        else:
            self.db.poke_listeners()
        try:
            # A switch already on (the file was there) is pulled again in the database now.
            result = await self.db.kill_switch(actor, notice if pulled_now else None)
        except ForeignDatabaseError:
            if pulled_now:  # another program's database: there is nothing of ours to stop
                kill.clear()
            raise
        except DatabaseError as exc:
            if is_corruption(exc):
                await self._kill_switch_on_corrupt_db(actor, exc, notice)
            if notice is None:
                raise DatabaseError(f"{exc}; and {file_error}") from exc
            result = KillSwitchResult(recorded=False, database_error=str(exc))
        if notice is None:
            return result.model_copy(update={"database_error": file_error})
        return result.model_copy(
            update={"engaged_at": notice.engaged_at, "kill_file": str(kill.path)}
        )

    async def _kill_switch_on_corrupt_db(
        self, actor: str, damage: DatabaseError, notice: KillNotice | None
    ) -> NoReturn:
        """OBSERVE alone if the safety table can still be written, then an error saying what
        was and was not done; the kill file, if written, stops the runners either way."""
        try:
            await kill_switch_on_corrupt_db(self.db, actor, damage)
        except CorruptDatabaseError as exc:  # OBSERVE was recorded, nothing cancelled
            if notice is None:
                raise
            raise CorruptDatabaseError(
                f"{exc}. The kill file {self.db.kill_file.path} is engaged too"
            ) from None
        except DatabaseError:
            if notice is None:
                raise
            raise CorruptDatabaseError(
                f"KILL SWITCH engaged through its kill file {self.db.kill_file.path}: runners "
                "start nothing new and stop what is executing; but the database is too "
                f"damaged to record it ({damage}). Restore it from a backup"
            ) from None

    async def resume(self, actor: str, reason: str = "resumed") -> bool:
        """Allow execution again. Revives nothing that was cancelled. False if already on.
        The kill file goes in the same transaction; while the database is locked this fails
        (DatabaseError) and the switch stays on."""
        changed = await self._safety.set_mode(
            SafetyMode.EXECUTE, actor_text(actor, self.identity), reason
        )
        return changed

    async def expire_due(self) -> list[int]:
        return await self.db.expire_proposals()

    # ------------------------------------------------------------------ execution

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
        result = await self.perform(claim)
        next_at = await asyncio.shield(self.db.record_attempt(claim, runner_id, result))
        assert claim.proposal.id is not None
        return Outcome(claim.proposal.id, result.success, result.error, next_at, result.result_data)

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
            self.retry_delay(definition, p.retry_count),
        )

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
            return AttemptResult(True, result)
        return AttemptResult(
            False,
            data,
            error,
            retryable,
            self.retry_delay(definition, p.retry_count) if retryable else None,
        )

    async def schedule_next_retry(self, proposal_id: int, error_message: str) -> datetime | None:
        """Count a failure and schedule the next attempt with backoff and jitter; None once
        the proposal's own max_retries is spent (it is then failed for good)."""
        p = await self.require_proposal(proposal_id)
        definition = self._registry.get_definition(p.action_name)
        return await self.db.schedule_retry(
            proposal_id, error_message, self.retry_delay(definition, p.retry_count)
        )
