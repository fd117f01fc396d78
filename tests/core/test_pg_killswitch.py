"""PostgreSQL's kill switch is the safety_state row: ``RowKillSwitch`` reads it as engaged
only when the kill switch set OBSERVE, and its watcher calls back within its interval, or at
once when told the row changed (the LISTEN/NOTIFY hook)."""

from __future__ import annotations

import asyncio
import time

from operator_core.db.pg.killswitch import RowKillSwitch
from operator_core.db.pg.store import PgActionDB


async def _other_host(url: str, what: str) -> None:
    db = PgActionDB(url)
    async with db:
        if what == "kill":
            await db.kill_switch("alice@other-host")
        elif what == "observe":
            await db.set_safety_mode("observe", "bob", "maintenance")
        else:
            await db.set_safety_mode("execute", "carol", "resumed")


def test_the_row_is_engaged_only_by_the_kill_switch(pg_url: str) -> None:
    async def go() -> list[tuple[bool, str | None]]:
        switch = RowKillSwitch(pg_url)
        seen = []
        try:
            for step in ("start", "observe", "execute", "kill", "execute"):
                if step != "start":
                    await _other_host(pg_url, step)
                engaged = await switch.refresh()
                notice = switch.read()
                assert engaged == switch.engaged() == (notice is not None)
                seen.append((engaged, notice.actor if notice else None))
        finally:
            await switch.close()
        return seen

    assert asyncio.run(go()) == [
        (False, None),
        (False, None),  # OBSERVE by hand stops claims, not running work (as on SQLite)
        (False, None),
        (True, "alice@other-host"),
        (False, None),
    ]


def test_the_watcher_calls_back_within_its_interval_and_at_once_when_told(pg_url: str) -> None:
    async def go(interval: float, tell: bool) -> float:
        switch = RowKillSwitch(pg_url)
        engaged = asyncio.Event()
        switch.watch(interval, engaged.set)
        try:
            await asyncio.sleep(0.2)  # its first read: not engaged
            assert not engaged.is_set() and not switch.engaged()
            await _other_host(pg_url, "kill")
            start = time.monotonic()
            if tell:
                switch.kill_changed()
            await asyncio.wait_for(engaged.wait(), 30)
            return time.monotonic() - start
        finally:
            await switch.unwatch()
            await switch.close()
            await _other_host(pg_url, "execute")

    assert asyncio.run(go(0.3, tell=False)) < 0.3 + 2.0  # one interval, and a loaded machine
    # An interval far longer than the test: only kill_changed() can have woken it.
    assert asyncio.run(go(600.0, tell=True)) < 2.0
