"""A text field that takes a burst of keys in the order they were typed."""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class TypeAheadInput(Input):
    """Textual runs ``enter``'s binding (submit) only once the key has gone up to the app, by
    which time the keys typed after it are already in the field: "reason, enter, more text" in
    one burst submitted the reason with the text after the enter. Here enter submits the text
    as it is at that key. A key (or paste) that reaches the field once the focus has left it
    (the enter closed it) is not typed into it: ``key_hold`` sends it on."""

    async def on_key(self, event: events.Key) -> None:
        if self.app.focused is not self:
            self.app.keys.misdirected(event)  # type: ignore[attr-defined]
        elif event.key == "enter":
            event.stop()
            event.prevent_default()
            await self.action_submit()
            self.submitted()

    def on_paste(self, event: events.Paste) -> None:
        if self.app.focused is not self:
            self.app.keys.misdirected(event)  # type: ignore[attr-defined]

    def submitted(self) -> None:
        """Right after enter, before the keys typed behind it are handled."""
