"""``:``: a one-line prompt at the bottom, as in k9s and vim. A pane or view's name (or a
prefix only it starts with) goes there; anything else says so in one line and goes nowhere."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

from operator_tui.goto import PLACES, resolve


class GotoPrompt(ModalScreen[str | None]):
    """Dismissed with the place to go to, or None."""

    BINDINGS = [Binding("escape", "back_out", "Back", key_display="esc")]
    DEFAULT_CSS = """
    GotoPrompt {
        align: left bottom;
        background: $background 30%;
    }
    GotoPrompt > Horizontal {
        dock: bottom;
        height: 1;
        background: $panel;
    }
    GotoPrompt Static {
        width: 1;
        color: $accent;
        text-style: bold;
    }
    """

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(":")
            yield Input(
                placeholder=f"go to: {', '.join(PLACES)}",
                suggester=SuggestFromList(PLACES, case_sensitive=False),
                id="goto-input",
                compact=True,
            )

    def on_mount(self) -> None:
        self.set_focus(self.query_one(Input))

    @on(Input.Submitted, "#goto-input")
    def _submitted(self, event: Input.Submitted) -> None:
        found = resolve(event.value)
        if isinstance(found, str):
            self.dismiss(found)
            return
        typed = event.value.strip()
        if found:
            message = f"“{typed}” could be {', '.join(found)}: type more of it."
        elif typed:
            message = f"No pane or view is called “{typed}”: try {', '.join(PLACES)}."
        else:
            message = f"Type a pane or view: {', '.join(PLACES)}."
        self.app.notify(message, severity="warning", markup=False)
        self.dismiss(None)

    def action_back_out(self) -> None:
        self.dismiss(None)
