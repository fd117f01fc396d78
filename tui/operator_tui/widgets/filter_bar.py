"""The ``/`` filter input for the focused pane: enter keeps the filter, escape clears it."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

from operator_tui.widgets.type_ahead import TypeAheadInput


class FilterBar(TypeAheadInput):
    BINDINGS = [Binding("escape", "clear", "Clear filter", show=False)]

    class Cleared(Message):
        pass

    class Left(Message):
        """The focus left the bar."""

    def __init__(self, *, id: str) -> None:
        super().__init__(
            placeholder="filter this pane · enter keeps it · escape clears it", id=id, compact=True
        )
        self.back_to: Widget | None = None
        """Where the focus goes when enter closes the bar: the pane it filters."""

    def submitted(self) -> None:
        # At once: keys typed after the enter go to the pane's side (see TypeAheadInput).
        if self.back_to is not None:
            self.screen.set_focus(self.back_to)

    def on_blur(self, event: events.Blur) -> None:
        self.post_message(self.Left())

    def action_clear(self) -> None:
        self.value = ""
        self.post_message(self.Cleared())
