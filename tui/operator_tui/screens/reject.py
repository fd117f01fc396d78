"""Asks why a proposal is rejected; the reason is stored with the rejection and audited."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from operator_tui.widgets.type_ahead import TypeAheadInput


class RejectReasonModal(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "back_out", "Back")]

    def __init__(self, what: str) -> None:
        super().__init__(classes="dialog-screen")
        self._what = what

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="reject-dialog") as dialog:
            dialog.border_title = Text(f"Reject {self._what}")  # names are not markup
            yield Static("Why? The reason is stored with the rejection and in the audit log.")
            yield TypeAheadInput(placeholder="reason (required)", id="reason")
            yield Static("", id="reason-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Reject (enter)", id="reject", variant="error")
                yield Button("Back (esc)", id="back")

    def on_mount(self) -> None:
        # Now, not after the next message: keys held while the dialog opened go to the field.
        self.set_focus(self.query_one("#reason", Input))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """The reason as it was when enter was pressed: text typed right after the enter is
        already in the field by the time this is handled, and is not part of it."""
        event.stop()
        self._submit(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "reject":
            self._submit(self.query_one("#reason", Input).value)
        else:
            self.dismiss(None)

    def _submit(self, value: str) -> None:
        reason = value.strip()
        if not reason:
            self.query_one("#reason-error", Static).update("A reason is required.")
            self.set_focus(self.query_one("#reason", Input))
            return
        self.dismiss(reason)

    def action_back_out(self) -> None:
        self.dismiss(None)
