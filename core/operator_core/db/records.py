"""The plain records the engine's transactions pass around, below every db module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal, ActionRecord

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the audit log's first event."""

# Named tuples, immutable like frozen dataclasses, are cheaper to build: a runner builds
# these for every action it handles (see docs/performance.md).


class AuditEntry(NamedTuple):
    """An audit event to append inside the same transaction as the change it describes."""

    event_type: str
    event_data: dict[str, Any]
    actor: str
    proposal_id: int | None = None
    workflow_id: int | None = None


class Claim(NamedTuple):
    """An action claimed by a runner, with the record of this attempt."""

    proposal: ActionProposal
    record: ActionRecord


class AttemptResult(NamedTuple):
    """How one attempt ended, as the subject reported it."""

    success: bool
    result_data: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = True
    retry_delay_seconds: float | None = None
