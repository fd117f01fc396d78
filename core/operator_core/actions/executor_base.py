"""The executor's state and what its parts share: the database, the registry, the
policy, who is acting, and the checks every proposal goes through."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Self

from operator_core.actions import limits
from operator_core.actions.audit import ActionAuditor
from operator_core.actions.definitions import ActionDefinition, validate_action_params
from operator_core.actions.fingerprint import Fingerprinter
from operator_core.actions.registry import ActionRegistry
from operator_core.actions.retry import RetryConfig
from operator_core.actions.safety import SafetyController
from operator_core.clock import Clock
from operator_core.db.actions import ActionDB
from operator_core.db.policy import (
    SETTINGS,
    Policy,
    check_requested,
    read_policy,
    seed_policy,
    set_setting,
)
from operator_core.env import env_bool
from operator_core.errors import ActionNotFoundError, ValidationError, WorkflowNotFoundError
from operator_core.identity import Identity, actor_text, current_identity
from operator_core.model.types import ActionProposal, WorkflowProposal


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ExecutorBase:
    """What ActionExecutor's parts (proposing, deciding, stopping, executing) stand on."""

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
        self.fingerprints = Fingerprinter(registry)
        self._safety = safety or SafetyController()
        self._auditor = auditor or ActionAuditor()
        self._retry_config = retry_config or RetryConfig()
        # An automation node's first retry delay by proposal id, noted while its attempt runs.
        self._node_backoff: dict[int, float] = {}
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
        self.db.budget_source = self._registry.budgets
        self._safety.bind(self.db)
        self._auditor.bind(self.db)

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> Self:
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

    async def __aenter__(self) -> Self:
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

    # ------------------------------------------------------------------ shared checks

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

    def _check_ticket_id(self, ticket_id: object) -> None:
        """A ticket id's type and range (whether the ticket exists is ``_check_ticket``'s)."""
        if ticket_id is None:
            return
        if not _is_int(ticket_id):
            raise ValidationError(f"a ticket id is a whole number, got {ticket_id!r}", "ticket")
        assert isinstance(ticket_id, int)
        # Out of SQLite's integer range is no ticket either (and cannot even be looked up).
        if not 0 < ticket_id < 2**63:
            raise ValidationError(f"no ticket with id {ticket_id}", "ticket")

    async def _check_ticket(self, ticket_id: object) -> None:
        self._check_ticket_id(ticket_id)
        if isinstance(ticket_id, int) and await self.db.get_ticket(ticket_id) is None:
            raise ValidationError(f"no ticket with id {ticket_id}", "ticket")

    # ------------------------------------------------------------------ reading

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
