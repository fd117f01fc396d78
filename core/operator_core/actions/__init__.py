"""Actions: types, registry, safety, audit, retry and the executor."""

from operator_core.actions.retry import RetryConfig
from operator_core.actions.types import (
    ActionProposal,
    ActionRecord,
    ActionStatus,
    ActionType,
    WorkflowProposal,
    WorkflowStatus,
)

__all__ = [
    "ActionProposal",
    "ActionRecord",
    "ActionStatus",
    "ActionType",
    "RetryConfig",
    "WorkflowProposal",
    "WorkflowStatus",
]
