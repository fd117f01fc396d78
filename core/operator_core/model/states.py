"""The lifecycle states of actions and workflows, and where an action comes from.

Plain enums, apart from the pydantic models in ``operator_core.model.types`` (which
re-exports them): what reads the database for display needs these and no pydantic.
"""

from __future__ import annotations

from enum import Enum


class ActionStatus(str, Enum):
    """Valid action lifecycle states."""

    PROPOSED = "proposed"
    """Action requested, awaiting validation."""
    VALIDATED = "validated"
    """Parameters verified; runs once approved (if required), due and its dependency is done."""
    EXECUTING = "executing"
    """Claimed by a runner and running."""
    COMPLETED = "completed"
    """Finished successfully."""
    FAILED = "failed"
    """Execution error (waiting for a retry while next_retry_at is set)."""
    CANCELLED = "cancelled"
    """Halted by a user, a rejection, expiry, a failed workflow step or the kill switch."""


class ActionType(str, Enum):
    """Where an action comes from."""

    SUBJECT = "subject"
    TOOL = "tool"
    WORKFLOW = "workflow"


class WorkflowStatus(str, Enum):
    """Workflow lifecycle: pending -> in_progress -> completed | failed | cancelled."""

    PENDING = "pending"
    """Workflow created, no actions started yet."""
    IN_PROGRESS = "in_progress"
    """At least one action has started."""
    COMPLETED = "completed"
    """All actions completed successfully."""
    FAILED = "failed"
    """A step failed for good."""
    CANCELLED = "cancelled"
    """Workflow was cancelled or rejected."""
