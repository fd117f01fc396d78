"""The dashboard follows the database: other connections and processes, countdowns, idling,
dialogs, and the background tasks ``operator demo`` runs beside it."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from operator_core.clock import FrozenClock
from operator_core.db.actions import ActionDB
from operator_core.errors import ConfigError
from operator_tui import data as dashboard_data
from operator_tui.app import OperatorApp
from operator_tui.devtools.fixture import FIXTURE_NOW, FixtureSubject, fixture_app
from operator_tui.format import clock_time
from operator_tui.panes import PANES, PaneTable
from operator_tui.screens.confirm import ConfirmModal
from textual.widgets import Static
from tui_helpers import eventually, other_executor, plain, toasts

SIZE = (120, 40)


def row_keys(app: OperatorApp, pane_id: str) -> list[str]:
    pane = app.dashboard.query_one(f"#{pane_id}", PaneTable)
    return [str(row.key.value) for row in pane.ordered_rows]


@pytest.mark.parametrize("poked", [True, False])
async def test_change_from_a_second_connection_shows_within_a_second(
    db_path: Path, poked: bool
) -> None:
    """A commit from another connection wakes the dashboard at once; one that does not poke
    (its listener gone) is found by the data_version poll, still within a second."""
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        if not poked:
            app.watcher.stop()
        async with other_executor(db_path) as other:
            p = await other.propose_action("drain_store", {"store_id": "s2"}, reason="test")
        took = await eventually(
            lambda: f"p{p.id}" in row_keys(app, "approvals"),
            timeout=1.0,
            what="the new proposal in #approvals",
        )
        assert took < 1.0
        await pilot.pause()


async def test_change_from_another_process_shows_within_a_second(db_path: Path) -> None:
    app = fixture_app(db_path)
    script = (
        "import asyncio, sys\n"
        "from operator_core.actions.executor import ActionExecutor\n"
        "from operator_core.actions.registry import ActionRegistry\n"
        "from operator_tui.devtools.fixture import FixtureSubject\n"
        "async def main():\n"
        "    ex = ActionExecutor(sys.argv[1], ActionRegistry.from_subject(FixtureSubject()))\n"
        "    async with ex:\n"
        "        await ex.cancel_proposal(26, 'bob@ops-2')\n"
        "asyncio.run(main())\n"
    )
    async with app.run_test(size=SIZE):
        await app.wait_loaded()
        assert "p26" in row_keys(app, "approvals")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(db_path))
        assert await proc.wait() == 0
        done = time.monotonic()
        await eventually(
            lambda: "p26" not in row_keys(app, "approvals"),
            timeout=1.0,
            what="the cancelled proposal to leave #approvals",
        )
        assert time.monotonic() - done < 1.0


async def test_countdowns_tick_from_the_clock_without_reading(db_path: Path) -> None:
    clock = FrozenClock(FIXTURE_NOW)
    app = OperatorApp(db_path, FixtureSubject(), clock=clock, tick_interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        pane = app.dashboard.query_one("#retries", PaneTable)

        def on_screen() -> str:
            return "\n".join(pane.render_line(y).text for y in range(pane.size.height))

        assert str(pane.get_cell("p31", "in")) == "in 15s"
        assert "in 15s" in on_screen()
        before = on_screen().splitlines()
        refreshes = app.refreshes
        clock.advance(10)
        await eventually(lambda: str(pane.get_cell("p31", "in")) == "in 5s", timeout=2.5)
        await pilot.pause()
        # What is drawn is the new value; in the rows that ticked only the countdown changed,
        # and every other line is drawn as before.
        after = on_screen().splitlines()
        assert "in 5s" in on_screen() and "in 15s" not in on_screen()
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        column = before[0].index("Countdown")
        # (The last error is drawn after the countdown, the same in both.)
        assert [after[i][column:].split()[:2] for i in changed] == [["in", "5s"], ["in", "50s"]]
        assert all(after[i][:column] == before[i][:column] for i in changed)
        clock.advance(10)
        await eventually(lambda: str(pane.get_cell("p31", "in")) == "due now", timeout=2.5)
        await pilot.pause()
        assert "due now" in on_screen()
        assert app.refreshes == refreshes, "a countdown must not re-read the database"


async def test_a_new_minute_rereads_only_the_activity(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = []
    load = dashboard_data.load

    async def counted_load(db: ActionDB, *args: int | None) -> dashboard_data.DashboardData:
        loads.append(db)
        return await load(db, *args)

    monkeypatch.setattr(dashboard_data, "load", counted_load)
    fills = []
    show = PaneTable.show

    def counted_show(pane: PaneTable, *args: object) -> None:
        fills.append(pane.id)
        show(pane, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(PaneTable, "show", counted_show)
    clock = FrozenClock(FIXTURE_NOW)
    app = OperatorApp(db_path, FixtureSubject(), clock=clock, poll_interval=0.1, tick_interval=0.1)
    async with app.run_test(size=SIZE):
        await app.wait_loaded()
        assert len(loads) == 1
        assert len(fills) == len(PANES)
        refreshed = app.dashboard.query_one("#refreshed", Static)
        retries = app.dashboard.query_one("#retries", PaneTable)
        assert str(retries.get_cell("p31", "in")) == "in 15s"
        clock.advance(60)
        later = clock_time(clock.now())
        await eventually(
            lambda: later in plain(refreshed),
            timeout=2.0,
            what="the header to show the new minute's refresh",
        )
        assert len(loads) == 1, "nothing changed: the rows must not be read again"
        # Nor the panes filled again (the tick moves their times), but for the Running pane:
        # the retry came due in that minute, and waits there for a runner.
        assert fills == [pane_id for pane_id, _, _ in PANES] + ["running"]
        await eventually(lambda: str(retries.get_cell("p31", "in")) == "due now", timeout=1.0)
        async with other_executor(db_path) as other:
            p = await other.propose_action("drain_store", {"store_id": "s2"}, reason="test")
        await eventually(lambda: f"p{p.id}" in row_keys(app, "approvals"), timeout=1.0)
        assert len(loads) == 2


async def test_idle_dashboard_does_not_reread(db_path: Path) -> None:
    app = fixture_app(db_path, poll_interval=0.1)
    async with app.run_test(size=SIZE):
        await app.wait_loaded()
        refreshes = app.refreshes
        await asyncio.sleep(1.0)
        assert app.refreshes == refreshes


async def test_refresh_waits_while_a_dialog_is_open(db_path: Path) -> None:
    app = fixture_app(db_path, poll_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await pilot.press("K")
        await eventually(lambda: isinstance(app.screen, ConfirmModal))
        refreshes = app.refreshes
        async with other_executor(db_path) as other:
            p = await other.propose_action("drain_store", {"store_id": "s2"}, reason="test")
        await asyncio.sleep(0.5)
        assert app.refreshes == refreshes
        await pilot.press("n")
        await eventually(lambda: f"p{p.id}" in row_keys(app, "approvals"), timeout=1.0)


async def test_background_tasks_run_with_the_app_and_stop_with_it(db_path: Path) -> None:
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def agent() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.set()
            raise

    app = fixture_app(db_path, background=[agent])
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await asyncio.wait_for(started.wait(), 2)
        await pilot.press("q")
    assert stopped.is_set()


async def test_the_first_frame_drawn_has_the_rows(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows are read before the screen is laid out, so no frame is drawn empty first."""
    from operator_tui.screens.dashboard import DashboardScreen

    first_frame: list[list[str]] = []
    refresh = DashboardScreen._compositor_refresh

    def recording_refresh(screen: DashboardScreen) -> None:
        if not first_frame:
            first_frame.append(row_keys(screen.app, "approvals"))
        refresh(screen)

    monkeypatch.setattr(DashboardScreen, "_compositor_refresh", recording_refresh)
    app = fixture_app(db_path)
    async with app.run_test(size=SIZE):
        await app.wait_loaded()
        assert first_frame, "no frame was drawn"
        assert first_frame[0] == row_keys(app, "approvals")
        assert "p24" in first_frame[0]


@pytest.mark.parametrize(("width", "layout"), [(120, "-wide"), (100, "-narrow")])
async def test_the_first_frame_is_laid_out_for_the_terminal_width(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, width: int, layout: str
) -> None:
    """The width classes are set before the first frame, not on the Resize that follows it
    (which laid out and drew every pane a second time)."""
    from operator_tui.screens.dashboard import DashboardScreen

    first_classes: list[set[str]] = []
    refresh = DashboardScreen._compositor_refresh

    def recording_refresh(screen: DashboardScreen) -> None:
        if not first_classes:
            first_classes.append(set(screen.classes))
        refresh(screen)

    monkeypatch.setattr(DashboardScreen, "_compositor_refresh", recording_refresh)
    app = fixture_app(db_path)
    async with app.run_test(size=(width, 40)):
        await app.wait_loaded()
        assert first_classes, "no frame was drawn"
        other = {"-wide", "-narrow"} - {layout}
        assert layout in first_classes[0] and not first_classes[0] & other
        assert layout in app.dashboard.classes


async def test_a_long_pane_fills_what_the_screen_shows_first_then_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first fill adds only as many rows as the pane shows (with the scrollable size of
    all of them); the rest follow right after that frame, in order."""
    from operator_tui.screens.dashboard import DashboardScreen

    path = tmp_path / "long.db"
    async with other_executor(path) as ex:
        await ex.propose_actions(
            [
                {
                    "action_name": "drain_store",
                    "parameters": {"store_id": f"s{i}"},
                    "reason": f"long pane {i}",
                }
                for i in range(60)
            ]
        )
    first: list[tuple[int, int]] = []
    refresh = DashboardScreen._compositor_refresh

    def recording_refresh(screen: DashboardScreen) -> None:
        pane = screen.query_one("#approvals", PaneTable)
        if not first and pane.row_count:
            first.append((pane.row_count, pane.virtual_size.height))
        refresh(screen)

    monkeypatch.setattr(DashboardScreen, "_compositor_refresh", recording_refresh)
    app = OperatorApp(path, FixtureSubject(), clock=FrozenClock(FIXTURE_NOW))
    async with app.run_test(size=(120, 24)) as pilot:
        await app.wait_loaded()
        pane = app.dashboard.query_one("#approvals", PaneTable)
        await eventually(lambda: pane.row_count == 60, timeout=2.0, what="every row")
        shows = pane.size.height - 1  # the rows on screen, below the column header
        filled = app.dashboard._pane_sizes()["approvals"][1]
        assert shows <= filled < 24, "the rows the pane shows, not the screen's height"
        assert first == [(filled, 61)], "those rows first, scrollable for the header and all 60"
        assert pane.virtual_size.height == 61
        keys = row_keys(app, "approvals")
        assert keys == sorted(keys, key=lambda k: int(k[1:])), "oldest first"
        assert pane.settled
        await pilot.press("ctrl+end")
        target = pane.selected_target()
        assert target is not None and target.id == int(keys[-1][1:]), "the cursor reaches the last"


@pytest.fixture
def order(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What happened, in order: "frame" each time the dashboard's screen is drawn; a test
    appends its own events."""
    from operator_tui.screens.dashboard import DashboardScreen

    happened: list[str] = []
    refresh = DashboardScreen._compositor_refresh

    def recording_refresh(screen: DashboardScreen) -> None:
        refresh(screen)
        happened.append("frame")

    monkeypatch.setattr(DashboardScreen, "_compositor_refresh", recording_refresh)
    return happened


async def test_the_subject_is_read_after_the_first_frame(db_path: Path, order: list[str]) -> None:
    """The dashboard's keys do not need the subject's definitions: they are read once the
    first frame is up (building them is about 15 ms of a start-up)."""

    class Subject(FixtureSubject):
        def action_definitions(self):  # type: ignore[no-untyped-def]
            order.append("definitions")
            return super().action_definitions()

    app = OperatorApp(db_path, Subject(), clock=FrozenClock(FIXTURE_NOW))
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await eventually(lambda: "definitions" in order, timeout=2.0, what="the definitions")
        assert order[0] == "frame" and order.count("definitions") == 1
        assert "drain_store" in app.executor.registry
        await pilot.pause()


async def test_a_subject_with_bad_definitions_is_said_and_the_dashboard_stays(
    db_path: Path,
) -> None:
    class Broken(FixtureSubject):
        def action_definitions(self):  # type: ignore[no-untyped-def]
            defs = super().action_definitions()
            return defs + defs[:1]

    app = OperatorApp(db_path, Broken(), clock=FrozenClock(FIXTURE_NOW))
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await eventually(
            lambda: any(sev == "error" for sev, _, _ in toasts(app)),
            timeout=2.0,
            what="the error toast",
        )
        severity, title, message = next(t for t in toasts(app) if t[0] == "error")
        assert title == "Cannot read the subject's actions" and "defined twice" in message
        assert row_keys(app, "approvals"), "the dashboard is still up, with its rows"
        await pilot.pause()


async def test_a_subject_loader_runs_once_after_the_first_frame(
    db_path: Path, order: list[str]
) -> None:
    """``operator tui`` hands the dashboard a loader for its ``--subject``: called once, after
    the first frame; the executor then has the subject's actions, and the subject is closed
    with the dashboard."""

    class Closing(FixtureSubject):
        async def aclose(self) -> None:
            order.append("closed")

    def load() -> FixtureSubject:
        order.append("loaded")
        return Closing()

    app = OperatorApp(db_path, subject_loader=load, clock=FrozenClock(FIXTURE_NOW))
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_loaded()
        await eventually(lambda: "loaded" in order, timeout=2.0, what="the subject loaded")
        assert order[0] == "frame" and order.count("loaded") == 1
        assert isinstance(app.subject, FixtureSubject)
        assert "drain_store" in app.executor.registry
        assert app.executor.db is app.db, "the executor goes through the dashboard's ActionDB"
        assert "closed" not in order
        await pilot.pause()
    assert order.count("loaded") == 1 and order.count("closed") == 1


@pytest.mark.parametrize(
    "error, said",
    [
        (
            ConfigError("cannot import subject module 'nosuch': No module named 'nosuch'"),
            "operator: cannot import subject module 'nosuch': No module named 'nosuch'",
        ),
        (
            ValueError("bad value at import"),
            "operator: cannot load the subject: ValueError: bad value at import",
        ),
    ],
)
async def test_a_subject_that_cannot_be_loaded_ends_the_dashboard_with_one_line(
    db_path: Path, error: Exception, said: str
) -> None:
    def load() -> FixtureSubject:
        raise error

    import inspect

    exits: list[str] = []

    class Recording(OperatorApp):
        CSS_PATH = str(Path(inspect.getfile(OperatorApp)).parent / str(OperatorApp.CSS_PATH))

        def exit(self, *args: object, message: object = None, **kwargs: object) -> None:
            exits.append(str(message))
            super().exit(*args, message=message, **kwargs)  # type: ignore[arg-type]

    before = db_path.read_bytes()
    app = Recording(db_path, subject_loader=load, clock=FrozenClock(FIXTURE_NOW))
    async with app.run_test(size=SIZE):
        await eventually(
            lambda: app.return_code is not None, timeout=5.0, what="the dashboard to give up"
        )
    assert app.return_code == 1
    assert exits == [said]
    assert db_path.read_bytes() == before


async def test_an_unreadable_database_ends_the_dashboard_with_one_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 512)
    before = corrupt.read_bytes()
    app = fixture_app(corrupt)
    async with app.run_test(size=SIZE):
        await eventually(
            lambda: app.return_code is not None, timeout=5.0, what="the dashboard to give up"
        )
    assert app.return_code == 1
    assert corrupt.read_bytes() == before


async def test_rows_far_from_their_time_are_not_recomputed_every_tick(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operator_tui.panes import ScheduledPane

    computed: dict[str, int] = {}
    tick_cells = ScheduledPane.tick_cells

    def counted(pane: ScheduledPane, row, now):  # type: ignore[no-untyped-def]
        computed[row.key] = computed.get(row.key, 0) + 1
        return tick_cells(pane, row, now)

    monkeypatch.setattr(ScheduledPane, "tick_cells", counted)
    clock = FrozenClock(FIXTURE_NOW)
    clock.advance(20)  # off the minute: a time on one is about to turn, so it is recomputed
    app = OperatorApp(db_path, FixtureSubject(), clock=clock, tick_interval=0.1)
    async with app.run_test(size=SIZE):
        await app.wait_loaded()
        pane = app.dashboard.query_one("#scheduled", PaneTable)
        await asyncio.sleep(1.0)
        away = {
            key: (row.model.scheduled_at - clock.now()).total_seconds()
            for key, row in pane._by_key.items()
        }
        assert away == {"p22": 880.0, "p23": 250.0, "p26": 2680.0}
        assert computed == {"p22": 1, "p23": 1, "p26": 1}, "far off: computed once"
        clock.advance(200)  # p23 is now 50 s off: recomputed at every tick
        await eventually(lambda: str(pane.get_cell("p23", "in")) == "in 50s", timeout=1.0)
        await asyncio.sleep(1.0)
        assert computed["p23"] >= 6
        assert computed["p22"] == computed["p26"] == 2, "recomputed once, then left alone"


def test_run_lowers_the_switch_interval_until_the_first_frame_then_restores_it(
    db_path: Path,
) -> None:
    """``operator tui`` runs the app with ``App.run``: until the first frame is up, the
    collector is paused and threads take turns every STARTUP_SWITCH_INTERVAL (so Textual's
    writer thread sends that frame at once); both come back once it is drawn, and after."""
    import gc
    import inspect

    from operator_tui.startup import STARTUP_SWITCH_INTERVAL

    seen: dict[str, object] = {}

    class Recording(OperatorApp):
        CSS_PATH = str(Path(inspect.getfile(OperatorApp)).parent / str(OperatorApp.CSS_PATH))

        async def on_load(self) -> None:
            seen["loading"] = (sys.getswitchinterval(), gc.isenabled())
            await super().on_load()

    async def drive(pilot: object) -> None:
        await app.wait_loaded()
        await eventually(gc.isenabled, what="the collector back on after the first frame")
        seen["drawn"] = (sys.getswitchinterval(), gc.isenabled())
        app.exit()

    original = sys.getswitchinterval()
    app = Recording(
        db_path,
        subject=FixtureSubject(),
        clock=FrozenClock(FIXTURE_NOW),
        approval_mode=True,
        actor="alice@ops-1",
    )
    try:
        app.run(headless=True, size=SIZE, auto_pilot=drive)
        seen["after"] = (sys.getswitchinterval(), gc.isenabled())
    finally:
        gc.enable()
        sys.setswitchinterval(original)
    assert seen["loading"] == (STARTUP_SWITCH_INTERVAL, False)
    assert seen["drawn"] == (original, True)
    assert seen["after"] == (original, True)
