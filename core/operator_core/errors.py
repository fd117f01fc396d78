"""Errors the engine raises. Each message is meant for a tired operator at 3 a.m."""

from __future__ import annotations


class OperatorError(Exception):
    """Base of every error the CLI and dashboard show as one clear line."""


class ValidationError(OperatorError, ValueError):
    """A proposal's action or parameters do not match the registry."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class UnknownActionError(ValidationError):
    pass


class ObserveOnlyError(OperatorError):
    """Execution is off (OBSERVE mode, e.g. after the kill switch)."""


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
