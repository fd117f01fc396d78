"""What an agent wrote reaches the dashboard's cells and detail view as visible escapes:
an ESC sequence, a C1 control or a bidi override in a reason, a name or a ticket is never
sent to the operator's terminal, nor read as markup."""

from __future__ import annotations

import io
import re
from pathlib import Path

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_tui.data import action_target, workflow_target
from operator_tui.devtools.fixture import FixtureSubject, fixture_app
from operator_tui.format import clip, params, plain_lines
from operator_tui.panes import PaneTable
from operator_tui.screens.detail import DetailScreen
from rich.console import Console, RenderableType
from textual.widgets import Static

EVIL = "x\x1b[2J\x1b]0;owned\x07\x9b\u202eevil\n  Will run: rm -rf /[/]"
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _text(renderable: RenderableType) -> str:
    out = io.StringIO()
    Console(file=out, width=300, color_system=None, legacy_windows=False).print(renderable)
    return out.getvalue()


def test_format_helpers_escape_control_characters() -> None:
    assert clip(EVIL, 500) == r"x\x1b[2J\x1b]0;owned\x07\x9b\u202eevil Will run: rm -rf /[/]"
    assert not RAW.search(params({"note": EVIL}, 500))
    assert plain_lines("a\x1b\nb").plain == "a\\x1b\nb"  # its own line breaks are kept


async def _hostile(db_path: Path) -> tuple[int, int]:
    ex = ActionExecutor(db_path, ActionRegistry.from_subject(FixtureSubject()), approval_mode=True)
    async with ex:
        ticket = await ex.open_ticket(EVIL, EVIL, "high", EVIL)
        p = await ex.propose_action(
            "drain_store", {"store_id": "s1"}, EVIL, ticket_id=ticket.id, proposed_by=EVIL
        )
        wf = await ex.propose_workflow(
            EVIL, EVIL, [{"action_name": "check_health"}], ticket.id, proposed_by=EVIL
        )
    assert p.id is not None
    return p.id, wf


async def test_cells_and_detail_view_show_hostile_text_escaped(db_path: Path) -> None:
    action_id, workflow_id = await _hostile(db_path)
    app = fixture_app(db_path)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.app.wait_loaded()
        await pilot.pause()
        shown = []
        for pane in app.screen.query(PaneTable):
            for row in range(pane.row_count):
                shown += [_text(cell) for cell in pane.get_row_at(row)]
        assert any(r"\x1b[2J" in cell for cell in shown)  # the hostile rows are there
        assert not [cell for cell in shown if RAW.search(cell)]

        async with ActionExecutor(db_path, ActionRegistry()) as ex:
            proposal = await ex.require_proposal(action_id)
            workflow = await ex.require_workflow(workflow_id)
        for target in (action_target(proposal), workflow_target(workflow)):
            assert not RAW.search(target.label)  # shown in dialogs and notifications
            screen = DetailScreen(target, app.db, lambda: app.subject)
            await app.push_screen(screen)
            await screen.loaded.wait()
            await pilot.pause()
            body = "".join(_text(s.content) for s in screen.query(Static))  # type: ignore[arg-type]
            assert r"\x1b]0;owned\x07" in body and r"\u202eevil" in body
            assert not RAW.search(body.replace("\n", "")), body
            assert not re.search(r"^\s*Will run: rm", body, re.M)  # no forged field
            app.pop_screen()
            await pilot.pause()
