"""Errors the engine raises. Each message is meant for a tired operator at 3 a.m."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from datetime import datetime


class OperatorError(Exception):
    """Base of every error the CLI and dashboard show as one clear line."""


class ValidationError(OperatorError, ValueError):
    """A proposal's action or parameters do not match the registry."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class UnknownActionError(ValidationError):
    pass


def observe_message(changed_at: datetime | None, changed_by: str, reason: str) -> str:
    why = f" ({reason})" if reason else ""
    when = f" at {changed_at.strftime('%Y-%m-%d %H:%M:%S UTC')}" if changed_at else ""
    return (
        f"execution is off: safety mode is OBSERVE{why}, set by {changed_by}{when}; "
        "run 'operator resume' to allow execution again"
    )


class ObserveOnlyError(OperatorError):
    """Execution is off (OBSERVE mode, e.g. after the kill switch): since ``changed_at``,
    set by ``changed_by`` for ``reason``. Without a message, ``observe_message`` says so."""

    def __init__(
        self,
        message: str | None = None,
        *,
        changed_at: datetime | None = None,
        changed_by: str = "",
        reason: str = "",
    ) -> None:
        super().__init__(
            message if message is not None else observe_message(changed_at, changed_by, reason)
        )
        self.changed_at = changed_at
        self.changed_by = changed_by
        self.reason = reason


class ActionNotFoundError(OperatorError, LookupError):
    pass


class WorkflowNotFoundError(OperatorError, LookupError):
    pass


class InvalidTransitionError(OperatorError):
    """The action is not in a state that allows this change (it may have moved meanwhile)."""


class ApprovalError(OperatorError):
    """Approval refused: e.g. four-eyes rule, or approving something that needs none."""


class DatabaseError(OperatorError):
    """The database cannot be used: locked, corrupt, or made by a newer version."""


class SchemaTooNewError(DatabaseError):
    pass


class ConfigError(OperatorError):
    """A configuration or subject file is wrong."""


class ActionFailed(Exception):
    """Raised by a subject when an action fails. retryable=False fails it for good."""

    def __init__(
        self, message: str, *, retryable: bool = True, result_data: dict | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.result_data = result_data
