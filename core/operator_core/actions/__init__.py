"""Actions: types, registry, safety, audit, retry and the executor.

The names below are imported when first asked for, so that importing a module of this
package (the enums of ``states``, the ``views`` the dashboard reads) does not import
pydantic with the models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from operator_core.actions.retry import RetryConfig
    from operator_core.actions.types import (
        ActionProposal,
        ActionRecord,
        ActionStatus,
        ActionType,
        WorkflowProposal,
        WorkflowStatus,
    )

_WHERE = {
    "ActionProposal": "types",
    "ActionRecord": "types",
    "ActionStatus": "states",
    "ActionType": "states",
    "RetryConfig": "retry",
    "WorkflowProposal": "types",
    "WorkflowStatus": "states",
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
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
