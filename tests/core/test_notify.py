"""Wake-up pokes: a writer reaches every listener on the database, including listeners that
arrive after the writer has cached the list."""

from __future__ import annotations

import asyncio
from pathlib import Path

from operator_core.notify import Listener, Notifier


async def _poked(listener: Listener) -> bool:
    try:
        await asyncio.wait_for(listener.event.wait(), 1.0)
    except TimeoutError:
        return False
    listener.event.clear()
    return True


async def test_listeners_arriving_later_are_poked_too(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    notifier = Notifier(db)
    first = Listener(db)
    assert first.start()
    try:
        notifier.notify()
        assert await _poked(first)
        second = Listener(db)  # arrives at once: same coarse directory timestamp, maybe
        assert second.start()
        notifier.notify()
        assert await _poked(first) and await _poked(second)
        await asyncio.sleep(0.1)  # the cached list is now trusted...
        notifier.notify()
        assert await _poked(second)
        third = Listener(db)  # ...until the directory changes again
        assert third.start()
        notifier.notify()
        assert await _poked(third) and await _poked(second) and await _poked(first)
        second.stop()
        notifier.notify()
        assert await _poked(third) and not second.event.is_set()
        third.stop()
    finally:
        first.stop()
        notifier.close()


async def test_a_listener_can_opt_out_of_its_own_pokes(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    me = Listener(db)
    assert me.start()
    notifier = Notifier(db)
    notifier.own_name = me.name
    try:
        notifier.notify()
        assert not await _poked(me)
    finally:
        me.stop()
        notifier.close()


async def test_the_listener_list_is_read_again_only_while_it_may_be_incomplete(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    from operator_core import notify

    listings = []
    listdir = os.listdir

    def counted(path):  # type: ignore[no-untyped-def]
        listings.append(time.monotonic())
        return listdir(path)

    monkeypatch.setattr(notify.os, "listdir", counted)
    db = tmp_path / "x.db"
    listener = Listener(db)
    assert listener.start()
    notifier = Notifier(db)
    try:
        start = time.monotonic()
        while time.monotonic() - start < 0.3:
            notifier.notify()
        # Listed while the directory's change was recent, then trusted: not once per commit.
        assert listings and listings[-1] - start < 0.1
        assert await _poked(listener)
    finally:
        listener.stop()
        notifier.close()
