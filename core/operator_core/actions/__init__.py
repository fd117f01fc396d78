"""Actions: what an action is (definitions, the Subject protocol), the rules (registry,
safety, audit, retry) and the executor, the one place that changes state.

The names below are imported when first asked for, so that importing a module of this
package does not import pydantic with the models (which live in ``operator_core.model``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from operator_core.actions.retry import RetryConfig
    from operator_core.model.types import (
        ActionProposal,
        ActionRecord,
        ActionStatus,
        ActionType,
        WorkflowProposal,
        WorkflowStatus,
    )

_WHERE = {
    "ActionProposal": "operator_core.model.types",
    "ActionRecord": "operator_core.model.types",
    "ActionStatus": "operator_core.model.states",
    "ActionType": "operator_core.model.states",
    "RetryConfig": "operator_core.actions.retry",
    "WorkflowProposal": "operator_core.model.types",
    "WorkflowStatus": "operator_core.model.states",
}

__all__ = [
    "ActionProposal",
    "ActionRecord",
    "ActionStatus",
    "ActionType",
    "RetryConfig",
    "WorkflowProposal",
    "WorkflowStatus",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
