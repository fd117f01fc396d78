"""A yes/no dialog for anything destructive: ``y`` confirms, ``n`` or escape backs out.

The safe button has the focus, so a stray enter never confirms.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmModal(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "confirm", "Yes"),
        Binding("n,escape", "back_out", "No"),
    ]
    AUTO_FOCUS = "#no"  # from the moment it is composed: never the confirming button

    def __init__(
        self, title: str, body: RenderableType, confirm_label: str, *, danger: bool = True
    ) -> None:
        super().__init__(classes="dialog-screen")
        self._title = title
        self._body = body
        self._confirm_label = confirm_label
        self._danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-dialog") as dialog:
            dialog.border_title = Text(self._title)  # names in it are not markup
            # A str body may carry an agent's names (a workflow's, say): never read as markup.
            body = Text(self._body) if isinstance(self._body, str) else self._body
            yield Static(body, id="confirm-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    f"{self._confirm_label} (y)",
                    id="yes",
                    variant="error" if self._danger else "primary",
                )
                yield Button("Back (n / esc)", id="no")

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#no", Button))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_back_out(self) -> None:
        self.dismiss(False)
