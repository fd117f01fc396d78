"""The header: safety mode (a red OBSERVE / KILL SWITCH banner when execution is off), the
runners up (a red ``no runner`` when approved work is due and none is), approval mode,
database, read-only, the last audit checkpoint (red when checkpoints fail), counts per pane,
last refresh, activity."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from operator_core.db.heartbeats import ALIVE_WITHIN
from operator_core.safe_text import visible
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from operator_tui.data import DashboardData
from operator_tui.format import clock_time, full_time, short_path
from operator_tui.widgets import steady
from operator_tui.widgets.activity import ActivityBar

if TYPE_CHECKING:
    from operator_core.anchor.runtime import AnchorStatus


class StatusHeader(Vertical):
    """Three lines; a fourth, the kill-switch banner, appears only in OBSERVE mode."""

    def __init__(self, where: Path | str, approval_mode: bool, read_only: bool, *, id: str) -> None:
        """``where``: the database's path, or its URL already redacted (``url.redact``)."""
        super().__init__(id=id)
        self._where = where
        self._approval_mode = approval_mode
        self._read_only = read_only
        # Built here, not in compose: the first data may be shown before they are mounted.
        self._banner = Static(id="banner")
        self._mode = Static("◌ loading", id="mode")
        self._runners = Static("", id="runners")
        self._data: DashboardData | None = None
        self._runners_shown: tuple[Text, str | None, bool] | None = None
        self._refreshed = Static("", id="refreshed")
        # Hidden until this process publishes checkpoints (see anchor/runtime.py).
        self._anchor = Static("", id="anchor")
        self._counts = Static("", id="counts")
        self._activity = ActivityBar(id="activity")

    def compose(self) -> ComposeResult:
        yield self._banner
        with Horizontal(id="status-line"):
            yield self._mode
            yield self._runners
            yield MetaLine(self._where, self._approval_mode, self._read_only, id="meta")
            yield self._anchor
            yield self._refreshed
        yield self._counts
        yield self._activity

    def show(self, data: DashboardData, pane_counts: dict[str, int]) -> None:
        safety = data.safety
        self.set_class(safety.observe, "-observe")
        mode, banner = self._mode, self._banner
        if safety.observe:
            steady.show(mode, Text(" ■ OBSERVE ", style="bold"))
            why = f" ({visible(safety.reason)})" if safety.reason else ""
            steady.show(
                banner,
                Text.assemble(
                    ("■ KILL SWITCH · OBSERVE", "bold"),
                    f" — execution is OFF{why}, set by {visible(safety.changed_by)} at "
                    f"{full_time(safety.changed_at)}. Press E to resume.",
                ),
                one_line=False,
            )
        else:
            steady.show(mode, Text(" ● EXECUTE ", style="bold"))
            steady.show(banner, "", one_line=False)
        steady.show(
            self._refreshed,
            Text.assemble(("  refreshed ", "dim"), clock_time(data.loaded_at), " "),
        )
        self.show_anchor(data.anchor)
        counts = Text(" ")
        for i, (name, value) in enumerate(pane_counts.items()):
            if i:
                counts.append(" · ", style="dim")
            counts.append(f"{name} ")
            counts.append(str(value), style="bold")
        counts.append(" · ", style="dim")
        counts.append("executing ")
        counts.append(str(data.counts.executing), style="bold")
        steady.show(self._counts, counts)
        self._activity.show(data.executions, data.failures)
        self._data = data
        self.tick(data.loaded_at)

    def tick(self, now: datetime) -> None:
        """The runners up at ``now``: one whose last beat read is too old is gone, whether
        or not the database changed since (a dead runner writes nothing). Redrawn only when
        what it says changes (every redraw costs an idle dashboard CPU)."""
        data = self._data
        if data is None:
            return
        since = now - timedelta(seconds=ALIVE_WITHIN)
        up = [r for r in data.runners if r.beat_at >= since]
        stranded = not up and bool(data.queued)
        if up:
            text = Text(f" ● {len(up)} runner{'s' if len(up) != 1 else ''} ")
            tooltip: str | None = "\n".join(f"{r.id} (pid {r.pid} on {r.host})" for r in up)
        elif stranded:
            text = Text(f" ✗ no runner: {len(data.queued)} due ", style="bold")
            tooltip = (
                "Approved work is due and no runner has beaten lately: start one with "
                "`operator run`."
            )
        else:
            text = Text(" ○ no runner ", style="dim")
            tooltip = None
        if (text, tooltip, stranded) == self._runners_shown:
            return
        self._runners_shown = (text, tooltip, stranded)
        self._runners.set_class(stranded, "-stranded")
        self._runners.tooltip = tooltip
        steady.show(self._runners, text)

    def show_anchor(self, anchor: AnchorStatus | None) -> None:
        self._anchor.display = anchor is not None
        if anchor is None:
            return
        self._anchor.set_class(anchor.failing, "-failing")
        last = clock_time(anchor.last_at) if anchor.last_at else "never"
        if anchor.failing:
            steady.show(self._anchor, Text(f" ✗ CHECKPOINTS FAILING (last {last}) ", style="bold"))
            self._anchor.tooltip = visible(anchor.error or "")
        else:
            steady.show(self._anchor, Text.assemble(("  anchored ", "dim"), last))
            self._anchor.tooltip = f"audit checkpoint of event {anchor.size}"


class MetaLine(Widget):
    """Approval mode, the database path or redacted URL (in full when there is room, else
    cut from the left: its file or database name is what tells two dashboards apart) and
    read-only, on one line."""

    def __init__(self, where: Path | str, approval_mode: bool, read_only: bool, *, id: str) -> None:
        super().__init__(id=id)
        self._where = where
        self._approval_mode = approval_mode
        self._read_only = read_only

    def render(self) -> Text:
        # Anything still too long ends in an ellipsis rather than wrapping out of sight.
        head = Text(no_wrap=True, overflow="ellipsis", end="")
        head.append(" approval ", style="dim")
        head.append("required" if self._approval_mode else "per action")
        head.append("  db ", style="dim")
        tail = Text(no_wrap=True, end="")
        if self._read_only:
            tail.append("  ")
            tail.append(" READ-ONLY ", style="bold reverse")
        room = self.size.width - head.cell_len - tail.cell_len
        head.append(short_path(self._where, limit=max(room, 12)))
        return head + tail
