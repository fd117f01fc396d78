"""What things are: action proposals, execution records, workflows and tickets.

Lifecycle of an action:
    proposed -> validated -> executing -> completed | failed | cancelled
A failed action with ``next_retry_at`` set is waiting for a retry; without it, it failed for good.
Approval is orthogonal to status: ``approved_at`` is set by approve, ``rejected_at`` by reject
(which also cancels). Every timestamp is timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from operator_core.clock import to_utc, utcnow
from operator_core.model.states import ActionStatus, ActionType, WorkflowStatus
from operator_core.model.views import ProposalState

__all__ = [
    "ActionProposal",
    "ActionRecommendation",
    "ActionRecord",
    "ActionStatus",
    "ActionType",
    "AuditEvent",
    "KillSwitchResult",
    "TICKET_SEVERITIES",
    "TICKET_STATUSES",
    "Ticket",
    "UTCTime",
    "WorkflowProposal",
    "WorkflowStatus",
]


# A datetime field of the engine: stored timezone-aware UTC; a naive value means local time.
UTCTime = Annotated[datetime, AfterValidator(to_utc)]


class _UTCModel(BaseModel):
    model_config = ConfigDict(use_enum_values=False, validate_assignment=True, defer_build=True)


class ActionProposal(ProposalState, _UTCModel):
    """A proposed action, its approval state, and its workflow/schedule/retry state."""

    id: int | None = Field(default=None, description="Database ID (None before insert)")
    ticket_id: int | None = Field(default=None, description="Associated ticket (optional)")
    action_name: str = Field(..., description="Name of the subject's action, e.g. transfer_leader")
    action_type: ActionType = Field(default=ActionType.SUBJECT, description="Source type")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Action arguments")
    reason: str = Field(..., description="Why this action is proposed")
    status: ActionStatus = Field(default=ActionStatus.PROPOSED, description="Lifecycle state")
    proposed_at: UTCTime = Field(default_factory=utcnow, description="When created")
    proposed_by: str = Field(default="agent", description="Who proposed it (agent or user@host)")
    validated_at: UTCTime | None = Field(default=None, description="When parameters passed")
    cancelled_at: UTCTime | None = Field(default=None, description="When cancelled")
    cancel_reason: str | None = Field(default=None, description="Why it was cancelled")
    # Approval
    requires_approval: bool = Field(
        default=True, description="Whether a human must approve before it runs"
    )
    approved_at: UTCTime | None = Field(default=None, description="When approved")
    approved_by: str | None = Field(default=None, description="Who approved")
    rejected_at: UTCTime | None = Field(default=None, description="When rejected")
    rejected_by: str | None = Field(default=None, description="Who rejected")
    rejection_reason: str | None = Field(default=None, description="Why it was rejected")
    expires_at: UTCTime | None = Field(
        default=None, description="Unapproved past this time -> cancelled as expired"
    )
    # Workflow (WRK-01)
    workflow_id: int | None = Field(default=None, description="Parent workflow ID if in a chain")
    execution_order: int = Field(default=0, description="Order within workflow (0-indexed)")
    depends_on_proposal_id: int | None = Field(
        default=None, description="Proposal ID that must complete before this runs"
    )
    delay_seconds: float = Field(
        default=0.0, description="Wait this long after the previous workflow step completed"
    )
    # Scheduling (WRK-02)
    scheduled_at: UTCTime | None = Field(
        default=None, description="Execute at this time (None = immediate)"
    )
    # Retry (WRK-03)
    retry_count: int = Field(default=0, description="Retries scheduled so far")
    max_retries: int = Field(default=3, description="Retries allowed after the first attempt")
    next_retry_at: UTCTime | None = Field(
        default=None, description="When to retry next (None = not scheduled)"
    )
    last_error: str | None = Field(default=None, description="Error from the last failed attempt")
    # Runner lease
    claimed_by: str | None = Field(default=None, description="Runner holding it while executing")
    lease_expires_at: UTCTime | None = Field(
        default=None, description="Claim is void after this time (runner presumed dead)"
    )
    cancel_requested: bool = Field(
        default=False, description="Kill switch or cancel asked the runner to stop it"
    )


class ActionRecord(_UTCModel):
    """One execution attempt of a proposal."""

    id: int | None = Field(default=None, description="Database ID")
    proposal_id: int = Field(..., description="Links to ActionProposal")
    attempt: int = Field(default=1, description="Attempt number, from 1")
    started_at: UTCTime | None = Field(default=None, description="Execution start")
    completed_at: UTCTime | None = Field(default=None, description="Execution end")
    success: bool | None = Field(default=None, description="Outcome (None while executing)")
    error_message: str | None = Field(default=None, description="Error details if failed")
    result_data: dict[str, Any] | None = Field(default=None, description="Execution output")
    host: str | None = Field(default=None, description="Host the attempt's command ran on")
    pid: int | None = Field(default=None, description="The command's process id")
    pgid: int | None = Field(default=None, description="The command's process group")
    process_start: str | None = Field(
        default=None,
        description="Start token of the group's leader (BOOT_ID:TICKS), against pid reuse",
    )


class WorkflowProposal(_UTCModel):
    """An ordered chain of actions, approved once."""

    id: int | None = Field(default=None, description="Database ID")
    name: str = Field(..., description="Workflow name")
    description: str = Field(default="", description="What this workflow accomplishes")
    ticket_id: int | None = Field(default=None, description="Associated ticket ID")
    status: WorkflowStatus = Field(default=WorkflowStatus.PENDING, description="Lifecycle state")
    created_at: UTCTime = Field(default_factory=utcnow, description="When created")
    requires_approval: bool = Field(default=True, description="Whether approval is needed")
    approved_at: UTCTime | None = Field(default=None, description="When approved")
    approved_by: str | None = Field(default=None, description="Who approved")
    rejected_at: UTCTime | None = Field(default=None, description="When rejected")
    rejected_by: str | None = Field(default=None, description="Who rejected")
    rejection_reason: str | None = Field(default=None, description="Why it was rejected")
    proposed_by: str = Field(default="agent", description="Who proposed it")


TICKET_SEVERITIES = ("low", "medium", "high", "critical")
"""A ticket's severities, lowest first (the seed's ``priority``)."""
TICKET_STATUSES = ("open", "acknowledged", "resolved")
"""A ticket's lifecycle, in order: open -> acknowledged -> resolved (open -> resolved too)."""


class Ticket(_UTCModel):
    """The problem a proposal answers, and what automations are triggered by."""

    id: int | None = Field(default=None, description="Database ID")
    title: str = Field(..., description="Short title")
    summary: str = Field(default="", description="What was observed")
    severity: str = Field(default="medium", description="low, medium, high or critical")
    status: str = Field(default="open", description="open, acknowledged or resolved")
    service: str | None = Field(default=None, description="The service it is about")
    team: str | None = Field(default=None, description="The team that owns it")
    assignee: str | None = Field(default=None, description="Who is on it")
    metadata: dict[str, str] = Field(default_factory=dict, description="Free string pairs")
    created_at: UTCTime = Field(default_factory=utcnow, description="When opened")
    acknowledged_at: UTCTime | None = Field(default=None, description="When acknowledged")
    resolved_at: UTCTime | None = Field(default=None, description="When resolved")
    updated_at: UTCTime | None = Field(default=None, description="When last changed")


class ActionRecommendation(BaseModel):
    """One step handed to ``propose_workflow``."""

    model_config = ConfigDict(defer_build=True)

    action_name: str = Field(..., description="Action to run")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Action arguments")
    reason: str = Field(default="", description="Why this step")
    delay_seconds: float = Field(default=0.0, description="Wait after the previous step")
    max_retries: int | None = Field(default=None, description="Override of the retry limit")


class AuditEvent(BaseModel):
    """One entry of the hash-chained audit log."""

    model_config = ConfigDict(defer_build=True)

    id: int
    proposal_id: int | None
    workflow_id: int | None
    event_type: str
    event_data: dict[str, Any]
    actor: str
    timestamp: datetime
    prev_hash: str
    hash: str


class KillSwitchResult(BaseModel):
    """What the kill switch cancelled."""

    model_config = ConfigDict(defer_build=True)

    cancelled_actions: list[int] = Field(default_factory=list)
    cancelled_workflows: list[int] = Field(default_factory=list)
    executing_signalled: list[int] = Field(default_factory=list)
    engaged_at: UTCTime | None = Field(
        default=None, description="When the kill file was written: runners stop from then on"
    )
    kill_file: str | None = Field(default=None, description="The kill file beside the database")
    recorded: bool = Field(
        default=True, description="The database recorded it (else it catches up when it can)"
    )
    database_error: str | None = Field(
        default=None, description="Why the database could not record it yet (e.g. locked)"
    )

    @property
    def total(self) -> int:
        return len(self.cancelled_actions) + len(self.executing_signalled)

    def summary(self) -> str:
        """What the pull did, for a person (the dashboard's notice)."""
        if not self.recorded:
            return (
                "Execution is off: runners stop within a second. The database is busy; it "
                "records OBSERVE and cancels all pending work as soon as it can."
            )
        return (
            f"OBSERVE mode. Cancelled {len(self.cancelled_actions)} action(s) and "
            f"{len(self.cancelled_workflows)} workflow(s); {len(self.executing_signalled)} "
            "executing action(s) are being stopped."
        )
