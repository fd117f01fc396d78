"""The event tail: newest at the bottom, in the first frame, following the end until the
operator scrolls up, at most ``MAX_LINES`` kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from operator_core.model.types import AuditEvent
from operator_tui.devtools.fixture import fixture_app
from operator_tui.widgets.event_tail import EventTail
from textual.app import App, ComposeResult

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def events(first: int, count: int) -> list[AuditEvent]:
    return [
        AuditEvent(
            id=i,
            proposal_id=i,
            workflow_id=None,
            event_type="proposed",
            event_data={"action": f"action-{i}", "reason": "r"},
            actor="agent",
            timestamp=START + timedelta(seconds=i),
            prev_hash="0" * 64,
            hash="0" * 64,
        )
        for i in range(first, first + count)
    ]


class TailApp(App[None]):
    CSS = "EventTail { height: 6; }"

    def compose(self) -> ComposeResult:
        yield EventTail(id="events")


def shown(tail: EventTail) -> list[str]:
    height = tail.scrollable_content_region.height
    return [tail.render_line(y).text.strip() for y in range(height)]


def ids(lines: list[str]) -> list[int]:
    return [int(line.split("#")[1].split()[0]) for line in lines if "#" in line]


async def test_follows_the_end_until_scrolled_up_then_again_at_the_end() -> None:
    app = TailApp()
    async with app.run_test(size=(100, 10)) as pilot:
        tail = app.query_one(EventTail)
        tail.add(events(1, 20))
        await pilot.pause()
        assert ids(shown(tail)) == [15, 16, 17, 18, 19, 20]
        assert tail.last_id == 20
        tail.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        assert ids(shown(tail)) == [1, 2, 3, 4, 5, 6]
        tail.add(events(21, 5))
        await pilot.pause()
        assert ids(shown(tail)) == [1, 2, 3, 4, 5, 6], "scrolled up: the view stays"
        tail.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        tail.add(events(26, 2))
        await pilot.pause()
        assert ids(shown(tail)) == [22, 23, 24, 25, 26, 27], "at the end again: it follows"


async def test_keeps_the_newest_lines_only() -> None:
    app = TailApp()
    async with app.run_test(size=(100, 10)) as pilot:
        tail = app.query_one(EventTail)
        tail.add(events(1, EventTail.MAX_LINES + 50))
        await pilot.pause()
        assert tail.line_count == EventTail.MAX_LINES
        assert tail.virtual_size.height == EventTail.MAX_LINES
        tail.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        assert ids(shown(tail))[0] == 51, "the 50 oldest were dropped"


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_first_frame_shows_the_newest_events(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    """Lines read at start-up are drawn in the first frame (a RichLog held them back until
    it had a size, after that frame)."""
    from operator_tui.screens.dashboard import DashboardScreen

    first: list[list[str]] = []
    refresh = DashboardScreen._compositor_refresh

    def recording_refresh(screen: DashboardScreen) -> None:
        refresh(screen)
        if not first:
            first.append(shown(screen.query_one(EventTail)))

    monkeypatch.setattr(DashboardScreen, "_compositor_refresh", recording_refresh)
    app = fixture_app(db_path)
    async with app.run_test(size=size):
        await app.wait_loaded()
        tail = app.dashboard.query_one(EventTail)
        assert first, "no frame was drawn"
        newest = await app.executor.db.list_audit_events(limit=1)
        assert first[0][-1] and f"#{newest[-1].proposal_id}" in first[0][-1]
        assert first[0] == shown(tail)


async def test_scrolled_back_it_says_it_is_paused_and_how_many_new_events_wait() -> None:
    app = TailApp()
    async with app.run_test(size=(100, 10)) as pilot:
        tail = app.query_one(EventTail)
        tail.add(events(1, 20))
        await pilot.pause()
        assert not tail.border_subtitle
        tail.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        assert tail.border_subtitle == "paused (scrolled back)"
        tail.add(events(21, 5))
        tail.add(events(26, 2))
        await pilot.pause()
        assert tail.border_subtitle == "paused (scrolled back) · 7 new ↓"
        tail.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        assert not tail.border_subtitle and tail.waiting == 0
