"""The dashboard's K while another process holds the database's write lock (issue 20, item 3):
it goes through ActionExecutor.kill_switch like the CLI, so the kill file is written at once,
the header turns to OBSERVE, and the database catches up when it can."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from operator_core.db.actions import ActionDB
from operator_tui.devtools.fixture import OPERATOR, fixture_app
from operator_tui.screens.confirm import ConfirmModal
from tui_helpers import eventually, toasts

SIZE = (100, 30)


async def test_kill_switch_key_works_while_the_database_is_locked(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPERATOR_BUSY_TIMEOUT", "0.3")
    kill_file = db_path.with_name(db_path.name + ".kill")
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.pause()
        assert not app.dashboard.query_one("#header").has_class("-observe")
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            await pilot.press("K")
            await eventually(lambda: isinstance(app.screen, ConfirmModal))
            await pilot.press("y")
            await eventually(
                lambda: app.dashboard.query_one("#header").has_class("-observe"),
                timeout=10,
                what="the OBSERVE banner while the lock is held",
            )
            assert json.loads(kill_file.read_text())["actor"].endswith(f"({OPERATOR})")
            await eventually(
                lambda: any("database is busy" in m for _, _, m in toasts(app)),
                what="the notice that the database catches up later",
            )
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    async with ActionDB(db_path) as db:
        # Nothing could write meanwhile; the file alone holds the switch until a runner or
        # a resume records it.
        mode, _, by, reason = await db.get_safety_mode()
        assert mode == "observe" and by.endswith(f"({OPERATOR})") and "not recorded" in reason
        raw = sqlite3.connect(db_path)
        try:
            assert raw.execute("SELECT mode FROM safety_state").fetchone()[0] == "execute"
        finally:
            raw.close()
