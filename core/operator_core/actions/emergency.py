"""The emergency stop: the kill switch, and resuming after it.

The kill switch on a damaged database must be the last thing to break. When the full kill
switch fails on corrupt pages (the cancellations read every pending action), the safety
mode alone is still set to OBSERVE, with its audit event, as long as those two tables can be
written: runners claim nothing in OBSERVE."""

from __future__ import annotations

from typing import NoReturn

from operator_core.actions.executor_base import ExecutorBase
from operator_core.actions.safety import SafetyMode
from operator_core.db.actions import KILL_SWITCH_ACTOR_REASON, ActionDB
from operator_core.db.health import (
    CorruptDatabaseError,
    ForeignDatabaseError,
    is_corruption,
    quick_check,
)
from operator_core.db.killfile import KillFile, KillNotice
from operator_core.errors import DatabaseError
from operator_core.identity import actor_text
from operator_core.model.types import KillSwitchResult


async def kill_switch_on_corrupt_db(db: ActionDB, actor: str, damage: DatabaseError) -> NoReturn:
    """Set OBSERVE despite ``damage``, then raise CorruptDatabaseError saying what was and
    was not done (it is an error: pending work was not cancelled)."""
    try:
        await db.read(lambda conn: quick_check(conn, db.db_path, "safety_state"))
        await db.set_safety_mode(
            "observe",
            actor,
            f"{KILL_SWITCH_ACTOR_REASON} (database corrupt: pending work not cancelled)",
        )
    except DatabaseError as exc:
        raise DatabaseError(
            f"KILL SWITCH FAILED: the database is too damaged to record it "
            f"({exc}); stop the runners by hand (SIGTERM)"
        ) from None
    raise CorruptDatabaseError(
        "KILL SWITCH pulled: safety mode OBSERVE, runners start no new work; but the "
        f"database is corrupt ({damage}), so pending actions were not cancelled and running "
        "ones were not told to stop. Restore it from a backup"
    )


class EmergencyStop(ExecutorBase):
    """Stopping everything, and allowing execution again."""

    async def kill_switch(self, actor: str) -> KillSwitchResult:
        """Stop everything, whatever the database is doing: the kill file first (runners stop
        starting work and cancel what is executing within a second), then the database
        (OBSERVE mode, every pending, scheduled and retry-waiting action and open workflow
        cancelled). If the database cannot record it now (locked past the busy timeout),
        the result says so and the first process that can write catches it up. Works on an
        executor not yet opened: the file does not need the database."""
        actor = actor_text(actor, self.identity)
        kill = self.db.kill_file
        if not isinstance(kill, KillFile):
            return await self._kill_switch_in_database(actor)
        notice: KillNotice | None = None
        pulled_now, file_error = False, None
        try:
            notice, pulled_now = kill.engage(actor, self.db.clock.now())
        except OSError as exc:
            file_error = f"cannot write the kill file {kill.path}: {exc.strerror}"
        else:
            self.db.poke_listeners()
        try:
            # A switch already on (the file was there) is pulled again in the database now.
            result = await self.db.kill_switch(actor, notice if pulled_now else None)
        except ForeignDatabaseError:
            if pulled_now:  # another program's database: there is nothing of ours to stop
                kill.clear()
            raise
        except DatabaseError as exc:
            if is_corruption(exc):
                await self._kill_switch_on_corrupt_db(actor, exc, notice)
            if notice is None:
                raise DatabaseError(f"{exc}; and {file_error}") from exc
            result = KillSwitchResult(recorded=False, database_error=str(exc))
        if notice is None:
            return result.model_copy(update={"database_error": file_error})
        return result.model_copy(
            update={"engaged_at": notice.engaged_at, "kill_file": str(kill.path)}
        )

    async def _kill_switch_in_database(self, actor: str) -> KillSwitchResult:
        """PostgreSQL: the safety_state row is the switch (db/pg/killswitch.py). It is set
        first on its own, without the write lock, as SQLite's kill file is written first:
        runners on every host read it within their poll interval and stop. Then the
        database's transaction records it (cancellations, events); if the lock is held past
        the busy timeout, the result says so and the first runner or ``resume`` that can
        write records it."""
        kill = self.db.kill_file
        notice: KillNotice | None = None
        pulled_now, row_error = False, None
        try:
            notice, pulled_now = await kill.engage(actor, self.db.clock.now())  # type: ignore[attr-defined]
        except DatabaseError as exc:
            row_error = f"cannot set the safety state row: {exc}"
        else:
            self.db.poke_listeners()
        try:
            result = await self.db.kill_switch(actor, notice if pulled_now else None)
        except DatabaseError as exc:
            if notice is None:
                raise DatabaseError(f"{exc}; and {row_error}") from exc
            return KillSwitchResult(
                recorded=False, database_error=str(exc), engaged_at=notice.engaged_at
            )
        mode = await self.db.get_safety_mode()
        return result.model_copy(update={"engaged_at": mode[1]})

    async def _kill_switch_on_corrupt_db(
        self, actor: str, damage: DatabaseError, notice: KillNotice | None
    ) -> NoReturn:
        """OBSERVE alone if the safety table can still be written, then an error saying what
        was and was not done; the kill file, if written, stops the runners either way."""
        try:
            await kill_switch_on_corrupt_db(self.db, actor, damage)
        except CorruptDatabaseError as exc:  # OBSERVE was recorded, nothing cancelled
            if notice is None:
                raise
            raise CorruptDatabaseError(
                f"{exc}. The kill file {self.db.kill_file.path} is engaged too"
            ) from None
        except DatabaseError:
            if notice is None:
                raise
            raise CorruptDatabaseError(
                f"KILL SWITCH engaged through its kill file {self.db.kill_file.path}: runners "
                "start nothing new and stop what is executing; but the database is too "
                f"damaged to record it ({damage}). Restore it from a backup"
            ) from None

    async def resume(self, actor: str, reason: str = "resumed") -> bool:
        """Allow execution again. Revives nothing that was cancelled. False if already on.
        The kill file goes in the same transaction; while the database is locked this fails
        (DatabaseError) and the switch stays on."""
        changed = await self._safety.set_mode(
            SafetyMode.EXECUTE, actor_text(actor, self.identity), reason
        )
        return changed
