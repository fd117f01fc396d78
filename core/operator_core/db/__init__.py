"""Persistence: the SQLite schema and ActionDB.

``ActionDB`` is imported on first use, not with the package: ``operator status`` reads
through ``db.snapshot`` alone and need not load every operation of the engine."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

    from operator_core.db.actions import ActionDB

__all__ = ["ActionDB"]


def __getattr__(name: str) -> Any:
    if name == "ActionDB":
        from operator_core.db.actions import ActionDB

        return ActionDB
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
