"""The dashboard's header shows the last published audit checkpoint, and turns red when
checkpoints cannot be written."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.anchor.sinks import CHECKPOINT_FILE, last_in_file
from operator_tui.app import OperatorApp
from operator_tui.format import clock_time
from textual.widgets import Static

from tests.support.subjects import TestSubject

SIZE = (120, 40)


def executor(db: Path) -> ActionExecutor:
    return ActionExecutor(db, ActionRegistry.from_subject(TestSubject()), approval_mode=True)


def header_anchor(app: OperatorApp) -> Static:
    return app.dashboard.query_one("#anchor", Static)


@pytest.fixture
def anchored_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "anchor"
    directory.mkdir()
    monkeypatch.setenv("OPERATOR_AUDIT_CHECKPOINT_DIR", str(directory))
    monkeypatch.setenv("OPERATOR_AUDIT_KEY_FILE", str(tmp_path / "audit.key"))
    monkeypatch.setenv("OPERATOR_AUDIT_SECONDS", "0.2")
    monkeypatch.delenv("OPERATOR_AUDIT_KEY", raising=False)
    return directory


async def test_the_header_shows_the_last_checkpoint_time(
    tmp_path: Path, anchored_env: Path
) -> None:
    db = tmp_path / "operator.db"
    async with executor(db) as ex:
        await ex.propose_action("ok", {}, reason="anchored")
    # Closing published the proposal's checkpoint.
    last = last_in_file(anchored_env / CHECKPOINT_FILE)
    assert last is not None
    app = OperatorApp(db, subject=TestSubject(), approval_mode=True)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.pause()
        shown = str(header_anchor(app).content)
        assert header_anchor(app).display
        assert "anchored" in shown and clock_time(last.checkpoint.time) in shown, shown
        assert not header_anchor(app).has_class("-failing")


async def test_the_header_turns_red_when_checkpoints_cannot_be_written(
    tmp_path: Path, anchored_env: Path
) -> None:
    db = tmp_path / "operator.db"
    async with executor(db) as ex:
        await ex.propose_action("ok", {}, reason="before")
    # The checkpoint file cannot be opened for appending, even by root.
    (anchored_env / CHECKPOINT_FILE).unlink()
    (anchored_env / CHECKPOINT_FILE).mkdir()
    app = OperatorApp(db, subject=TestSubject(), approval_mode=True)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        deadline = time.monotonic() + 10
        # Another writer's appends reach the dashboard's publisher through the database;
        # each also refreshes the dashboard, which then reads the publisher's status.
        async with executor(db) as other:
            while not header_anchor(app).has_class("-failing"):
                assert time.monotonic() < deadline, str(header_anchor(app).content)
                await other.propose_action("ok", {}, reason="more")
                await asyncio.sleep(0.3)
                await pilot.pause()
        shown = str(header_anchor(app).content)
        assert "CHECKPOINTS FAILING" in shown, shown
