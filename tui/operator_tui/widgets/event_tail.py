"""The audit/event tail: newest events at the bottom, appended as they arrive."""

from __future__ import annotations

from typing import Any

from operator_core.actions.types import AuditEvent
from rich.text import Text
from textual.widgets import RichLog

from operator_tui.format import clip, clock_time

_STYLE = {
    "approved": "green", "workflow_approved": "green", "completed": "green",
    "rejected": "red", "workflow_rejected": "red", "failed": "red", "retry_exhausted": "red",
    "workflow_failed": "red", "kill_switch": "bold red", "retry_scheduled": "yellow",
    "cancelled": "dim", "safety_mode_changed": "bold",
}


def describe(event: AuditEvent) -> str:
    """The interesting part of an event's data, on one short line."""
    data: dict[str, Any] = event.event_data
    if event.event_type == "kill_switch":
        return (f"cancelled {len(data.get('cancelled_actions', []))} actions, "
                f"{len(data.get('cancelled_workflows', []))} workflows; stopping "
                f"{len(data.get('executing_signalled', []))} executing")
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


class EventTail(RichLog):
    can_focus = False

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, max_lines=300, wrap=False, markup=False, highlight=False)
        self.last_id = 0
        self.border_title = "Events"

    @property
    def settled(self) -> bool:
        """Every line written is laid out (lines wait for the widget's first size)."""
        return not self._deferred_renders

    def add(self, events: list[AuditEvent]) -> None:
        for event in events:
            self.last_id = max(self.last_id, event.id)
            subject = (f"#{event.proposal_id}" if event.proposal_id is not None
                       else f"wf{event.workflow_id}" if event.workflow_id is not None else "")
            line = Text.assemble(
                (clock_time(event.timestamp), "dim"), " ",
                (f"{event.event_type:<19}", _STYLE.get(event.event_type, "")), " ",
                f"{subject:<6} ", (f"{event.actor:<14}", "dim"), " ",
                clip(describe(event), 120),
            )
            self.write(line)
