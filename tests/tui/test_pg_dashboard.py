"""The dashboard on PostgreSQL (issue 26): the fixture's day written into a PostgreSQL
database through the engine, then every key that changes state pressed in a real dashboard
(Pilot) on its URL, and the database read afterwards; the header never shows the URL's
password; two dashboards and the CLI on one database see each other's changes."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from operator_core.db.url import passwords, redact
from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import (
    OPERATOR,
    build_fixture,
    fixture_app,
)
from operator_tui.panes import PaneTable
from operator_tui.screens.reject import RejectReasonModal
from operator_tui.widgets.status_header import MetaLine
from psycopg.rows import dict_row
from tui_helpers import approve_confirmed, eventually, toasts

SIZE = (160, 50)


def pg_rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def proposal(url: str, pid: int) -> dict[str, Any]:
    [row] = pg_rows(url, "SELECT * FROM action_proposals WHERE id = %s", (pid,))
    return row


def keys_of(app: OperatorApp, pane: str) -> list[str]:
    table = app.dashboard.query_one(f"#{pane}", PaneTable)
    return [str(r.key.value) for r in table.ordered_rows if r.key.value != "-empty-"]


@pytest.fixture
async def fixture_url(pg_url: str) -> str:
    """The snapshot tests' fixture day, written into a fresh PostgreSQL database."""
    await build_fixture(pg_url)
    return pg_url


async def test_the_header_shows_the_url_with_its_password_hidden(fixture_url: str) -> None:
    secrets = passwords(fixture_url)
    assert secrets, "the test server's URLs carry a password"
    app = fixture_app(fixture_url)
    async with app.run_test(size=SIZE):
        await app.wait_loaded()
        shown = str(app.dashboard.query_one(MetaLine).render())
        assert redact(fixture_url) in shown
        screen = app.export_screenshot()
        assert all(s not in shown and s not in screen for s in secrets)
        assert redact(fixture_url).split("@", 1)[1] in screen


async def test_approve_and_reject_change_the_database(fixture_url: str) -> None:
    app = fixture_app(fixture_url)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        first, second, third = keys_of(app, "approvals")[:3]
        said = await approve_confirmed(pilot)  # #24 is high risk: it asks first
        assert f"#{first[1:]}" in said
        await eventually(lambda: first not in keys_of(app, "approvals"), what="the row to go")
        assert app.dashboard.current_target().key == second  # type: ignore[union-attr]
        # At once: the row left because of our own approval, not another process's change
        # (PostgreSQL's change counter counts our own commits too), so no "Selection moved".
        await approve_confirmed(pilot)  # #26: high risk too
        await eventually(lambda: second not in keys_of(app, "approvals"), what="the row to go")
        assert not [t for t in toasts(app) if t[1] == "Selection moved"]
        assert app.dashboard.current_target().key == third  # type: ignore[union-attr]
        await pilot.press("r")
        await eventually(lambda: isinstance(app.screen, RejectReasonModal), what="the prompt")
        await pilot.press(*"flaky", "enter")
        await eventually(lambda: third not in keys_of(app, "approvals"), what="the row to go")
    for key in (first, second):
        approved = proposal(fixture_url, int(key[1:]))
        assert approved["approved_by"] == OPERATOR and approved["rejected_at"] is None
    rejected = proposal(fixture_url, int(third[1:]))
    assert rejected["rejected_by"] == OPERATOR and rejected["approved_at"] is None
    assert rejected["rejection_reason"] == "flaky"
