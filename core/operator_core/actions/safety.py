"""Safety mode, persisted in the database so every process agrees.

EXECUTE lets the runner work; OBSERVE (set by the kill switch) stops new proposals and every
claim, from any process, at once. The kill file beside the database (``db/killfile.py``) is
OBSERVE too, before the database has recorded it: ``get_mode`` and ``check_can_execute`` read
both.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from operator_core.db.actions import ActionDB, observe_message
from operator_core.errors import ObserveOnlyError


class SafetyMode(str, Enum):
    OBSERVE = "observe"
    EXECUTE = "execute"


class _Bound:
    """Shares the executor's connection once bound; opens its own when used alone."""

    def __init__(self, db_path: Path | str | None = None, *, db: ActionDB | None = None) -> None:
        self._db = db
        self._db_path = Path(db_path) if db_path is not None else None

    def bind(self, db: ActionDB) -> None:
        self._db = db

    async def _get_db(self) -> ActionDB:
        if self._db is None:
            if self._db_path is None:
                raise RuntimeError(f"{type(self).__name__} has no database")
            self._db = ActionDB(self._db_path)
        if not self._db.is_open:
            await self._db.open()
        return self._db

    async def close(self) -> None:
        if self._db is not None and self._db_path is not None:
            await self._db.close()


class SafetyController(_Bound):
    async def get_mode(self) -> SafetyMode:
        mode, *_ = await (await self._get_db()).get_safety_mode()
        return SafetyMode(mode)

    async def check_can_execute(self) -> None:
        """Raise ObserveOnlyError unless the mode is EXECUTE."""
        db = await self._get_db()
        mode, at, by, reason = await db.get_safety_mode()
        if mode != SafetyMode.EXECUTE.value:
            raise ObserveOnlyError(observe_message(at, by, reason))

    async def set_mode(self, mode: SafetyMode, actor: str, reason: str = "") -> bool:
        db = await self._get_db()
        return await db.set_safety_mode(SafetyMode(mode).value, actor, reason)
