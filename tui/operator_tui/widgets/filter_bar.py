"""The ``/`` filter input for the focused pane: enter keeps the filter, escape clears it."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    BINDINGS = [Binding("escape", "clear", "Clear filter", show=False)]

    class Cleared(Message):
        pass

    def __init__(self, *, id: str) -> None:
        super().__init__(placeholder="filter this pane · enter keeps it · escape clears it", id=id,
                         compact=True)

    def action_clear(self) -> None:
        self.value = ""
        self.post_message(self.Cleared())
