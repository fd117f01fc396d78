"""Persistence: the SQLite schema and ActionDB."""

from operator_core.db.actions import ActionDB

__all__ = ["ActionDB"]
