"""Keys that move: ``1``-``5`` to a pane, ``j``/``k``/``g``/``G`` as the arrows and
Home/End, and the command palette (ctrl+p), made from the same bindings as ``?``."""

from __future__ import annotations

from pathlib import Path

from operator_core.db.actions import ActionDB
from operator_tui.devtools.fixture import OPERATOR, fixture_app
from operator_tui.panes import PANES, PaneTable
from operator_tui.screens.help import HelpScreen, binding_rows
from textual.command import CommandPalette
from textual.widgets import Static
from tui_helpers import approve_confirmed, eventually, plain

SIZE = (120, 40)


async def test_number_keys_go_to_each_pane(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_loaded()
        for n, (pane_id, _, _) in reversed(list(enumerate(PANES, start=1))):
            await pilot.press(str(n))
            assert app.focused is not None and app.focused.id == pane_id
            shown = [p.id for p in app.dashboard.query(PaneTable) if p.display]
            assert shown == [pane_id]


async def test_j_k_g_and_G_move_the_cursor_as_arrows_home_and_end(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        pane = app.dashboard.query_one("#approvals", PaneTable)
        last = pane.row_count - 1
        assert last >= 2
        moves = [("j", 1), ("j", 2), ("k", 1), ("G", last), ("g", 0), ("k", 0), ("end", last)]
        for key, row in moves:
            await pilot.press(key)
            assert pane.cursor_row == row, f"after {key}"
        await pilot.press("home")
        assert pane.cursor_row == 0
        # The cursor is what the keys act on: approve the row G went to.
        await pilot.press("G")
        target = app.dashboard.current_target()
        assert target is not None and target.kind == "workflow"
        await approve_confirmed(pilot)
        await eventually(lambda: target.key not in [str(r.key.value) for r in pane.ordered_rows])
    async with ActionDB(db_path) as db:
        wf = await db.get_workflow(target.id)
    assert wf is not None and wf.approved_by == OPERATOR


async def test_the_palette_offers_the_keys_help_lists_and_runs_them(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        rows, _ = binding_rows(app.dashboard)
        offered = [c.title for c in app.get_system_commands(app.dashboard)]
        assert offered == [r.description for r in rows]
        assert {"Approve", "Reject", "Cancel", "Kill", "History", "Go to Running"} <= set(offered)
        await pilot.press("question_mark")
        await eventually(lambda: isinstance(app.screen, HelpScreen))
        help_text = plain(app.screen.query_one("#help-keys", Static))
        assert all(d in help_text for d in offered)
        navigation = plain(app.screen.query_one("#help-navigation", Static)).split()
        assert {"j", "k", "g", "home", "G", "end"} <= set(navigation)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await eventually(lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*"go to scheduled")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await eventually(lambda: app.screen is app.dashboard, what="the palette to close")
        await eventually(lambda: app.focused is not None and app.focused.id == "scheduled")


async def test_read_only_palette_offers_no_change(db_path: Path) -> None:
    app = fixture_app(db_path, read_only=True)
    async with app.run_test(size=SIZE):
        await app.wait_loaded()
        offered = {c.title for c in app.get_system_commands(app.dashboard)}
        assert not offered & {"Approve", "Reject", "Cancel", "Kill", "Resume"}
        assert "History" in offered


async def test_y_copies_the_selected_id_and_says_so(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        target = app.dashboard.current_target()
        assert target is not None
        await pilot.press("y")
        assert app.clipboard == str(target.id)
        assert any(str(target.id) in n.message for n in app._notifications)
        await pilot.press("3", "y")
        workflow = app.dashboard.current_target()
        assert workflow is not None and workflow.kind == "workflow"
        assert app.clipboard == str(workflow.id)
        assert workflow.label.startswith(f"workflow wf{workflow.id} ")


async def test_a_kept_filter_shows_in_the_pane_title(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        pane = app.dashboard.query_one("#approvals", PaneTable)
        total = pane.item_count
        assert str(pane.border_title) == f"Approvals · {total}"
        await pilot.press("slash", "s", "5", "enter")
        await pilot.pause()
        assert not app.dashboard.filter_bar.display
        rows = [r for r in pane.ordered_rows if r.key.value != "-empty-"]
        assert 0 < len(rows) < total
        assert str(pane.border_title) == f"Approvals · {len(rows)} of {total} · filter: s5"
        await pilot.press("escape")
        assert str(pane.border_title) == f"Approvals · {total}"


async def test_s_cycles_the_order_of_the_approvals_pane(db_path: Path) -> None:
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await app.started.wait()
        pane = app.dashboard.query_one("#approvals", PaneTable)
        by_age = [str(r.key.value) for r in pane.ordered_rows]
        risks = pane.risks  # type: ignore[attr-defined]
        assert risks["drain_store"] == "high"
        await pilot.press("s")
        assert str(pane.border_title).endswith("sort: risk")
        words = [str(pane.get_row(r.key)[2]) for r in pane.ordered_rows]
        assert words == sorted(words, key=["high", "medium", "low", "?"].index)
        await pilot.press("s")
        assert str(pane.border_title).endswith("sort: action")
        await pilot.press("s")
        assert [str(r.key.value) for r in pane.ordered_rows] == by_age
        assert str(pane.border_title) == f"Approvals · {pane.item_count}"


async def test_space_marks_rows_and_a_approves_exactly_the_marked_after_one_confirm(
    db_path: Path,
) -> None:
    from operator_tui.screens.confirm import ConfirmModal

    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        pane = app.dashboard.query_one("#approvals", PaneTable)
        keys = [str(r.key.value) for r in pane.ordered_rows]
        assert len(keys) >= 3
        await pilot.press("space", "j", "space")
        assert sorted(pane.marked) == sorted([keys[0], keys[2]])
        assert "2 marked" in str(pane.border_title)
        await pilot.press("a")
        await eventually(lambda: isinstance(app.screen, ConfirmModal), what="the confirm")
        body = plain(app.screen.query_one("#confirm-body", Static))
        marked = [pane.marked[k] for k in (keys[0], keys[2])]
        assert all(t.label in body for t in marked)
        assert pane._by_key[keys[1]].target.label not in body  # type: ignore[union-attr]
        # The high-risk row in the set is said to be, before the list.
        assert f"1 of them high risk (or not known): {marked[0].name}" in body
        assert f"{marked[0].label}  HIGH risk" in body and f"{marked[1].label}  medium" in body
        await pilot.press("y")
        await eventually(lambda: not pane.marked, what="the marks to clear")
        await eventually(lambda: keys[0] not in [str(r.key.value) for r in pane.ordered_rows])
    async with ActionDB(db_path) as db:
        for key in keys:
            kind, item = key[0], int(key[1:])
            thing = await (db.get_workflow(item) if kind == "w" else db.get_proposal(item))
            assert thing is not None
            approved = thing.approved_by == OPERATOR
            assert approved == (key in (keys[0], keys[2])), key
