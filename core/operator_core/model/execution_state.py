"""An automation execution's stored state: below ``db/`` (which cancels executions in the
kill switch's and a ticket resolve's own transactions) and ``automations/`` (whose walker
moves it on). Plain JSON for storage.
"""

from __future__ import annotations

from operator_core.clock import datetime

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
)
FINISHED = (COMPLETED, FAILED, CANCELLED)
# Node states: "running" (action proposed) and "waiting" (delay) are in flight; the rest
# are settled. "cancelled" is an in-flight node stopped by a timeout or a cancel.
NODE_SETTLED = ("completed", "failed", "skipped", "cancelled")


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class _Mutable:
    """Compared and shown by value, as a dataclass: these two are plain classes because
    ``operator automations executions`` reads them, and importing dataclasses (with inspect,
    ast and dis) would cost it more than its answer (docs/performance.md)."""

    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({shown})"


class NodeResult(_Mutable):
    """One node's state and result, as the seed's NodeResult (plus branch and due time)."""

    __slots__ = ("status", "started_at", "completed_at", "proposal_id", "error", "branch", "due_at")

    def __init__(
        self,
        status: str,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        proposal_id: int | None = None,
        error: str | None = None,
        branch: bool | None = None,
        due_at: datetime | None = None,
    ) -> None:
        self.status = status
        self.started_at = started_at
        self.completed_at = completed_at
        self.proposal_id = proposal_id
        self.error = error
        self.branch = branch
        self.due_at = due_at

    def copy(self) -> NodeResult:
        return NodeResult(*(getattr(self, name) for name in self.__slots__))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        for key in ("started_at", "completed_at", "due_at"):
            if getattr(self, key) is not None:
                out[key] = _time(getattr(self, key))
        for key in ("proposal_id", "error", "branch"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeResult:
        return cls(
            status=data["status"],
            started_at=_parse(data.get("started_at")),
            completed_at=_parse(data.get("completed_at")),
            proposal_id=data.get("proposal_id"),
            error=data.get("error"),
            branch=data.get("branch"),
            due_at=_parse(data.get("due_at")),
        )


class ExecutionState(_Mutable):
    """What storage keeps of an execution besides its frozen definition."""

    __slots__ = ("status", "started_at", "deadline", "finished_at", "error", "nodes")

    def __init__(
        self,
        status: str = PENDING,
        started_at: datetime | None = None,
        deadline: datetime | None = None,
        finished_at: datetime | None = None,
        error: str | None = None,
        nodes: dict[str, NodeResult] | None = None,
    ) -> None:
        self.status = status
        self.started_at = started_at
        self.deadline = deadline
        self.finished_at = finished_at
        self.error = error
        self.nodes = {} if nodes is None else nodes

    def copy(self) -> ExecutionState:
        """A copy whose nodes can change without changing these."""
        nodes = {k: r.copy() for k, r in self.nodes.items()}
        return ExecutionState(
            self.status, self.started_at, self.deadline, self.finished_at, self.error, nodes
        )

    @property
    def current_node(self) -> str | None:
        """The first node in flight (the seed's currentNodeId)."""
        return next((k for k, r in self.nodes.items() if r.status in ("running", "waiting")), None)

    @property
    def completed_nodes(self) -> list[str]:
        return [k for k, r in self.nodes.items() if r.status in NODE_SETTLED]

    def next_wake(self) -> datetime | None:
        """When the runner must call ``advance`` with ``Tick`` (a delay or the deadline)."""
        if self.status in FINISHED:
            return None
        times = [r.due_at for r in self.nodes.values() if r.status == "waiting" and r.due_at]
        if self.deadline is not None:
            times.append(self.deadline)
        return min(times, default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "started_at": _time(self.started_at),
            "deadline": _time(self.deadline),
            "finished_at": _time(self.finished_at),
            "error": self.error,
            "nodes": {k: r.to_json() for k, r in self.nodes.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExecutionState:
        return cls(
            status=data["status"],
            started_at=_parse(data.get("started_at")),
            deadline=_parse(data.get("deadline")),
            finished_at=_parse(data.get("finished_at")),
            error=data.get("error"),
            nodes={k: NodeResult.from_json(v) for k, v in data.get("nodes", {}).items()},
        )

    def stop(self, status: str, error: str | None, now: datetime) -> list[tuple[str, int]]:
        """End the execution as ``status``: nodes in flight become ``cancelled``. Returns
        the (node, proposal) pairs whose proposals must be cancelled."""
        pending: list[tuple[str, int]] = []
        for node_id, result in self.nodes.items():
            if result.status not in ("running", "waiting"):
                continue
            if result.status == "running" and result.proposal_id is not None:
                pending.append((node_id, result.proposal_id))
            result.status, result.completed_at = "cancelled", now
            result.error = error
        self.status, self.error, self.finished_at = status, error, now
        return pending
