"""The pane strip shown on narrow terminals, where one pane is visible at a time."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import Static

from operator_tui.widgets import steady


class PaneTab(Static):
    """One tab; clicking it shows its pane (the keyboard uses tab / shift+tab)."""

    class Chosen(Message):
        def __init__(self, pane_id: str) -> None:
            super().__init__()
            self.pane_id = pane_id

    def __init__(self, pane_id: str, title: str) -> None:
        super().__init__(f" {title} ", id=f"tab-{pane_id}", classes="pane-tab")
        self.pane_id = pane_id
        self.title = title

    def set_count(self, count: int) -> None:
        steady.show(self, f" {self.title} {count} ")

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Chosen(self.pane_id))
