"""``?``: the keys that work right now, generated from the live bindings of the screen below
(so read-only mode, which removes the mutation keys, shows without them)."""

from __future__ import annotations

from typing import NamedTuple

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

_NOTES = Text.assemble(
    ("Mouse: ", "bold"),
    "click a pane or its tab to focus it; click the highlighted row again "
    "for its details; scroll with the wheel.\n",
    ("Live: ", "bold"),
    "panes follow the database within a second; countdowns and ages move every 5 seconds "
    "(the exact time is beside them). Times are UTC.\n",
    ("Approve: ", "bold"),
    "low and medium risk at once; high risk asks first, showing what it runs; on a "
    "workflow step it offers the workflow. Keys that cannot apply to the selected row (or in "
    "OBSERVE) are left out.\n",
    ("Palette: ", "bold"),
    "ctrl+p finds any of these keys by name.",
)


_CURSOR_ACTIONS = {
    "cursor_up",
    "cursor_down",
    "cursor_left",
    "cursor_right",
    "page_up",
    "page_down",
    "scroll_top",
    "scroll_bottom",
    "scroll_home",
    "scroll_end",
    "select_cursor",
}
"""A table's own keys: listed apart, as moving the cursor."""

_HIDDEN_ACTIONS = {"screen.copy_text", "copy_text", "help_quit", "command_palette"}


class KeyRow(NamedTuple):
    keys: str
    """Every key that does it, as shown (``g home``)."""
    description: str
    action: str
    node: DOMNode
    """Where the action runs (the widget or screen whose binding it is)."""


def binding_rows(screen: Screen[object]) -> tuple[list[KeyRow], list[str]]:
    """The keys active on ``screen`` in chain order, keys sharing a description merged; and
    the table navigation keys. The footer, ``?`` and the command palette all read these."""
    app = screen.app
    rows: dict[str, KeyRow] = {}
    navigation: list[str] = []
    for active in screen.active_bindings.values():
        binding: Binding = active.binding
        if not binding.description or not active.enabled or binding.action in _HIDDEN_ACTIONS:
            continue
        display = app.get_key_display(binding)
        if isinstance(active.node, DataTable) and binding.action in _CURSOR_ACTIONS:
            if display not in navigation:
                navigation.append(display)
            continue
        row = rows.get(binding.description)
        if row is None:
            rows[binding.description] = KeyRow(
                display, binding.description, binding.action, active.node
            )
        elif display not in row.keys.split(" "):
            rows[binding.description] = row._replace(keys=f"{row.keys} {display}")
    return list(rows.values()), navigation


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", key_display="esc")]

    def __init__(self, below: Screen[object], read_only: bool) -> None:
        super().__init__(classes="dialog-screen")
        self._keys, self._navigation = binding_rows(below)
        self._read_only = read_only

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help-dialog") as dialog:
            dialog.border_title = "Keys"
            dialog.border_subtitle = "esc closes"
            table = Table.grid(padding=(0, 2))
            for _ in range(2):
                table.add_column(style="bold", no_wrap=True, justify="right")
                table.add_column()
            half = (len(self._keys) + 1) // 2
            left, right = self._keys[:half], self._keys[half:]
            for i, row in enumerate(left):
                extra = right[i][:2] if i < len(right) else ("", "")
                table.add_row(row.keys, row.description, *extra)
            yield Static(table, id="help-keys")
            if self._read_only:
                yield Static(
                    Text(
                        "Read-only: approve, reject, cancel, kill switch and resume are disabled.",
                        style="bold",
                    ),
                    id="help-read-only",
                )
            if self._navigation:
                yield Static(
                    Text.assemble(
                        ("In a pane: ", "bold"), " ".join(self._navigation), " move the cursor"
                    ),
                    id="help-navigation",
                )
            yield Static(_NOTES, id="help-notes")

    def action_close(self) -> None:
        self.dismiss(None)
