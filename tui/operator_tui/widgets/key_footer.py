"""The footer of keys, recomposed at most once per batch of binding changes."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    """Textual's Footer rebuilds its keys once per bindings signal, and start-up sends three
    in a row (auto-focus, the active pane's focus, the screen stack); one rebuild shows the
    same keys."""

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self.refresh(recompose=True)
