"""The audit/event tail: newest events at the bottom, appended as they arrive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from operator_core.model.views import AuditEventView
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from operator_tui.format import clip, clock_time

if TYPE_CHECKING:
    from operator_core.model.types import AuditEvent

_STYLE = {
    "approved": "green",
    "workflow_approved": "green",
    "completed": "green",
    "rejected": "red",
    "workflow_rejected": "red",
    "failed": "red",
    "retry_exhausted": "red",
    "workflow_failed": "red",
    "kill_switch": "bold red",
    "retry_scheduled": "yellow",
    "cancelled": "dim",
    "safety_mode_changed": "bold",
}


def event_style(event_type: str) -> str:
    """The colour of an event type, the same in the tail and the Audit view."""
    return _STYLE.get(event_type, "")


def describe(event: AuditEventView | AuditEvent) -> str:
    """The interesting part of an event's data, on one short line."""
    data: dict[str, Any] = event.event_data
    if event.event_type == "kill_switch":
        return (
            f"cancelled {len(data.get('cancelled_actions', []))} actions, "
            f"{len(data.get('cancelled_workflows', []))} workflows; stopping "
            f"{len(data.get('executing_signalled', []))} executing"
        )
    if event.event_type == "proposed":
        return f"{data.get('action')} — {data.get('reason', '')}"
    if event.event_type == "retry_scheduled":
        return f"retry {data.get('retry_count')}/{data.get('max_retries')}: {data.get('error')}"
    for key in ("reason", "error", "name", "title", "mode"):
        if data.get(key):
            return str(data[key])
    if "attempt" in data:
        return f"attempt {data['attempt']}"
    return ""


class EventTail(ScrollView, can_focus=False):
    """The newest events at the bottom, following them while scrolled to the end.

    A line is rendered when it is first on screen (a log of 300 lines shows about ten), and
    the lines read at start-up are there in the first frame: Textual's RichLog renders every
    line written, and holds them all back until it first has a size, after that frame.
    """

    DEFAULT_CSS = """
    EventTail {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
    }
    """

    MAX_LINES = 300

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.last_id = 0
        self.border_title = "Events"
        self._lines: list[Text] = []
        self._dropped = 0
        """Lines dropped from the top (over ``MAX_LINES``): the line cache is keyed past them."""
        self._strips: dict[int, Strip] = {}
        self._widest = 0
        self._follow = True
        """Scrolled to the end: new lines scroll into view."""
        self.waiting = 0
        """Events come since the operator scrolled back (said in the subtitle)."""

    @property
    def settled(self) -> bool:
        return True

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def add(self, events: list[AuditEventView]) -> None:
        if not events:
            return
        if not self._follow:
            self.waiting += len(events)
            self._say_paused()
        for event in events:
            self.last_id = max(self.last_id, event.id)
            subject = (
                f"#{event.proposal_id}"
                if event.proposal_id is not None
                else f"wf{event.workflow_id}"
                if event.workflow_id is not None
                else ""
            )
            line = Text.assemble(
                (clock_time(event.timestamp), "dim"),
                " ",
                (f"{event.event_type:<19}", event_style(event.event_type)),
                " ",
                f"{subject:<6} ",
                (f"{event.actor:<14}", "dim"),
                " ",
                clip(describe(event), 120),
            )
            self._lines.append(line)
            self._widest = max(self._widest, line.cell_len)
        excess = len(self._lines) - self.MAX_LINES
        if excess > 0:
            del self._lines[:excess]
            self._dropped += excess
            self._strips = {k: v for k, v in self._strips.items() if k >= self._dropped}
        self.virtual_size = Size(self._widest, len(self._lines))
        if self._follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def _top(self) -> int:
        """The first line shown. Following, the last lines fit the height whatever the scroll
        position says: before the first layout it cannot yet say where the end is."""
        if self._follow:
            return max(0, len(self._lines) - self.scrollable_content_region.height)
        return int(self.scroll_y)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        following = new_value >= self.max_scroll_y
        if following != self._follow:
            self._follow = following
            if following:
                self.waiting = 0
            self._say_paused()

    def _say_paused(self) -> None:
        """Scrolled back, the tail no longer moves: it says so, and how many new events wait
        below."""
        if self._follow:
            self.border_subtitle = ""
        else:
            new = f" · {self.waiting} new ↓" if self.waiting else ""
            self.border_subtitle = f"paused (scrolled back){new}"

    async def on_click(self, event: events.Click) -> None:
        """A click opens the Audit view, where the log takes keys (``L`` does the same)."""
        await self.run_action("app.goto('audit')")

    def on_resize(self) -> None:
        if self._follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def render_line(self, y: int) -> Strip:
        index = self._top() + y
        width = self.scrollable_content_region.width
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get(self._dropped + index)
        if strip is None:
            strip = Strip(list(self._lines[index].render(self.app.console)))
            self._strips[self._dropped + index] = strip
        scroll_x = int(self.scroll_x)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style).apply_style(
            self.rich_style
        )
