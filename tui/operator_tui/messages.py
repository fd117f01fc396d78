"""What the screens ask of the app."""

from __future__ import annotations

from textual.message import Message

from operator_tui.data import Target


class OpenDetails(Message):
    """Open the detail view of ``target``."""

    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target
