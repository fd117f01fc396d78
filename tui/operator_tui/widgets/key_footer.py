"""The footer of keys: one line, one widget.

Textual's ``Footer`` is a container with a widget per key (ten here), each composed, styled
and laid out on its own, and all of them recomposed whenever the bindings change; that was a
tenth of the dashboard's work before its first frame. This draws the same line (in Footer's
compact look, from the same theme variables) as one ``Text``, and a click on a key presses it,
as a click on a ``FooterKey`` does.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.style import Style
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget

_ENABLED, _DISABLED = Style(), Style(dim=True)


class FooterEntry(NamedTuple):
    key: str
    """What pressing it simulates (the binding's first key)."""
    display: str
    description: str
    enabled: bool


class KeyFooter(Widget, can_focus=False):
    """The keys of the screen's active bindings that are shown (one per action, the first
    binding of each), ``key description`` each, dimmed when the action is disabled."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "key-footer--key",
        "key-footer--description",
        "key-footer--hover",
    }
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        & > .key-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .key-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .key-footer--hover {
            background: $block-hover-background;
        }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._entries: list[FooterEntry] | None = None
        self._spans: list[tuple[int, int, FooterEntry]] = []
        self._hover: FooterEntry | None = None
        """The key under the mouse (drawn highlighted, as a clickable key is)."""

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        self._entries = None
        self.refresh()

    @property
    def entries(self) -> list[FooterEntry]:
        if self._entries is None:
            seen: set[str] = set()
            entries = []
            for _, binding, enabled, _ in self.screen.active_bindings.values():
                if not binding.show or binding.action in seen:
                    continue
                seen.add(binding.action)
                entries.append(
                    FooterEntry(
                        binding.key, self.app.get_key_display(binding), binding.description, enabled
                    )
                )
            self._entries = entries
        return self._entries

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-footer--key")
        description_style = self.get_component_rich_style("key-footer--description")
        # Only the hover background: the key and its description keep their colours.
        hover_style = Style(bgcolor=self.get_component_rich_style("key-footer--hover").bgcolor)
        text = Text(no_wrap=True, overflow="crop", end="")
        spans = []
        for entry in self.entries:
            if spans:
                text.append(" ")
            start = text.cell_len
            extra = _ENABLED if entry.enabled else _DISABLED
            if entry.enabled and entry == self._hover:
                extra = hover_style
            text.append(entry.display, style=key_style + extra)
            if entry.description:
                text.append(f" {entry.description}", style=description_style + extra)
            spans.append((start, text.cell_len, entry))
        self._spans = spans
        return text

    def _entry_at(self, x: int) -> FooterEntry | None:
        return next((entry for start, end, entry in self._spans if start <= x < end), None)

    def on_click(self, event: events.Click) -> None:
        entry = self._entry_at(event.x)
        if entry is None:
            return
        event.stop()
        if entry.enabled:
            self.app.simulate_key(entry.key)
        else:
            self.app.bell()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self._set_hover(self._entry_at(event.x))

    def on_leave(self, event: events.Leave) -> None:
        self._set_hover(None)

    def _set_hover(self, entry: FooterEntry | None) -> None:
        if entry != self._hover:
            self._hover = entry
            self.refresh()
