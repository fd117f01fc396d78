"""The kill switch on a damaged database: the emergency stop must be the last thing to
break. When the full kill switch fails on corrupt pages (the cancellations read every
pending action), the safety mode alone is still set to OBSERVE, with its audit event, as
long as those two tables can be written: runners claim nothing in OBSERVE."""

from __future__ import annotations

from typing import NoReturn

from operator_core.db.actions import KILL_SWITCH_ACTOR_REASON, ActionDB
from operator_core.db.health import CorruptDatabaseError, quick_check
from operator_core.errors import DatabaseError


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
