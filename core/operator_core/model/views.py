"""Actions, workflows and audit events as read for display: plain objects, no pydantic.

``ActionDB.snapshot(fn, views=True)`` reads them (the dashboard's reads): each has the
attributes of its model in ``operator_core.model.types`` (``ActionProposal``,
``WorkflowProposal``, ``AuditEvent``), with the same names, types and values, but no
validation and no methods beyond the model's properties. The dashboard draws its first
frame from them before pydantic is imported (about 55 ms of a start-up on the development
machine); anything that changes state goes through the models and ``ActionExecutor``.
"""

from __future__ import annotations

from operator_core.model.states import ActionStatus

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from typing import Any


class ProposalState:
    """The questions asked of an action's state, for ``ActionProposal`` and ``ProposalView``
    alike."""

    __slots__ = ()

    @property
    def is_retry_waiting(self) -> bool:
        return self.status == ActionStatus.FAILED and self.next_retry_at is not None

    @property
    def awaiting_approval(self) -> bool:
        return (
            self.status in (ActionStatus.PROPOSED, ActionStatus.VALIDATED)
            and self.requires_approval
            and self.approved_at is None
        )


class View:
    """A stored row's values as attributes (made with ``of``, no checks). Which attributes,
    and their types, are the model's fields: the models are the one list of them (the
    dashboard's tests hold every view to its model's values)."""

    @classmethod
    def of(cls, values: dict[str, Any]) -> Any:
        """A view holding ``values`` itself (a dict nobody else keeps)."""
        view = cls.__new__(cls)
        view.__dict__ = values
        return view

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({fields})"


class ProposalView(ProposalState, View):
    """An action, with ``ActionProposal``'s attributes."""


class WorkflowView(View):
    """A workflow, with ``WorkflowProposal``'s attributes."""


class AuditEventView(View):
    """An audit event, with ``AuditEvent``'s attributes."""
