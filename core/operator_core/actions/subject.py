"""The Subject protocol: the system being operated, and the actions it offers.

It lives beside the action definitions so that the engine depends on the protocol alone;
the subjects in ``operator_core.subjects`` implement it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from operator_core.actions.definitions import ActionDefinition
from operator_core.model.types import ActionProposal, Ticket


class ProcessInfo(NamedTuple):
    """Where an attempt's command runs."""

    host: str
    pid: int
    pgid: int
    start: str | None


@dataclass
class ExecutionContext:
    """What a subject knows about the attempt it runs."""

    proposal: ActionProposal
    attempt: int
    timeout_seconds: float
    ticket: Ticket | None = None
    # The automation whose run proposed the action: its own secrets come first.
    automation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # A subject that starts processes says where, once they started: the attempt's record
    # keeps it, so the next runner can end them if this runner is lost.
    process_started: Callable[[ProcessInfo], Awaitable[None]] | None = None


@runtime_checkable
class Subject(Protocol):
    """A subject declares typed actions and executes them.

    ``execute`` returns result data for the record (JSON-serialisable) or raises
    ``operator_core.errors.ActionFailed`` (``retryable=False`` fails the action for good);
    any other exception is a retryable failure. It must stop promptly when its task is
    cancelled (kill switch, cancel, shutdown), cleaning up what it started.
    """

    name: str

    def action_definitions(self) -> list[ActionDefinition]: ...

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any] | None: ...

    def preview(self, action_name: str, parameters: dict[str, Any]) -> str | None:
        """The exact command or request that will run (secrets redacted), for approvers."""
        ...

    async def aclose(self) -> None: ...


class BaseSubject:
    """Convenience base: no preview, nothing to close."""

    name = "subject"

    def action_definitions(self) -> list[ActionDefinition]:
        raise NotImplementedError

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any] | None:
        raise NotImplementedError

    def preview(self, action_name: str, parameters: dict[str, Any]) -> str | None:
        return None

    async def aclose(self) -> None:
        return None
