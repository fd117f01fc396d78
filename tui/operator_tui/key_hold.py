"""Keys typed while a dialog, a screen or the filter is opening go to it, or are dropped:
never to the screen beneath.

Textual forwards each key the terminal sends to the widget focused *when the app takes it
off its queue*, and runs bindings when the key has bubbled back up to the app, against the
screen on top *then*. A burst (a paste, SSH sending several keystrokes in one packet) is
forwarded whole to the dashboard's pane before its first key is handled: after ``r``, the
``a`` of "bad idea" reached the dashboard and approved the very action being rejected.

So from the key that opens something until it is ready (its screen mounted with the focus
set, or the filter bar focused), the keys that follow are held here, in the order typed:
first those already forwarded to the dashboard (they come back up to the app), then those
the app had not forwarded yet. Then they go to the opened thing if its focus takes text (the
reject reason, the filter), as if typed into it; otherwise (a confirm dialog, help, the
detail view) they are dropped, and said to be: a question is never answered by keys typed
before it was shown. A key that opens nothing (no row selected, a refused read) drops what
followed it.

A marker posted to the focused widget when the hold begins travels up behind the keys already
forwarded there; the hold ends only once it is back at the app, so none of them is left to
reach a binding after the dialog is up.

And outside a hold, a key acts only if the screen it was given to is still on top when it
gets back to the app: ``y`` and ``a`` in one burst in a confirm dialog gave both to the
dialog, the ``y`` closed it, and the ``a`` was then looked up in the dashboard's bindings.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from textual import events
from textual.message import Message
from textual.widgets import Input

if TYPE_CHECKING:
    from textual.app import App
    from textual.screen import Screen

HeldEvent = events.Key | events.Paste


class Hold:
    """One opening: the keys held while it lasts. ``with hold:`` around the code that opens
    something ends the hold, dropping the keys, if nothing was opened."""

    def __init__(self, keys: KeyHold) -> None:
        self._keys = keys
        self.early: list[HeldEvent] = []
        """Keys forwarded to the dashboard before the hold began, back up at the app."""
        self.late: list[HeldEvent] = []
        """Keys (and pastes) the app took off its queue during the hold, never forwarded."""
        self.flushed = False
        """The marker is back: nothing forwarded before the hold is still on its way."""
        self.opened: bool | None = None
        """True once the opened thing is ready, False if nothing opens."""

    def ready(self) -> None:
        """What the key opened has the focus it will take keys with."""
        if self.opened is None:
            self.opened = True
            self._keys.settle(self)

    def close(self) -> None:
        """Nothing (more) opens: if the hold is still on, what followed the key is dropped."""
        if self.opened is None:
            self.opened = False
            self._keys.settle(self)

    def __enter__(self) -> Hold:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class HeldKeysFlushed(Message):
    """The marker: bubbles up from the widget that had the focus when the hold began."""

    def __init__(self, hold: Hold) -> None:
        super().__init__()
        self.hold = hold


class KeyHold:
    """The app's one hold at a time (see the module's docstring)."""

    limit = 3.0
    """Seconds after which a hold still on ends anyway, dropping its keys: an opening that
    never says it is ready (a bug, a lost marker) must not leave the dashboard deaf."""

    def __init__(self, app: App[object]) -> None:
        self._app = app
        self.current: Hold | None = None
        self._given: WeakKeyDictionary[events.Event, Screen[object]] = WeakKeyDictionary()
        """The screen on top when each key in flight was given to its focused widget."""

    def begin(self) -> Hold:
        """Hold the keys that follow, from now until what is opening is ready (or turns out
        not to open). Called from the key's binding, before anything awaits; a second call
        while a hold is on returns that hold."""
        if self.current is not None:
            return self.current
        hold = self.current = Hold(self)
        app = self._app
        marker = HeldKeysFlushed(hold)
        marker.set_sender(app)
        if not (app.focused or app.screen).post_message(marker):
            hold.flushed = True
        app.set_timer(self.limit, lambda: self._expire(hold))
        return hold

    def _expire(self, hold: Hold) -> None:
        if hold is self.current:
            hold.flushed = True
            if hold.opened is None:
                hold.opened = False
            self.settle(hold)

    def screen_pushed(self, screen: Screen[object]) -> None:
        """A screen was pushed: it is ready once mounted (its ``on_mount`` sets its focus).
        Called right before the push, so the hold, begun here if no key began it, marks
        from the widget that had the focus."""
        hold = self.begin()
        screen.call_later(hold.ready)  # runs after the screen's mount

    def take(self, event: events.Event) -> bool:
        """At the app, before Textual handles ``event``: True if taken from Textual. During a
        hold, every key and paste is held. Otherwise a key that comes back up from a screen no
        longer on top (covered by a dialog, or a dialog that has closed) is not looked up in
        the bindings of the screen that is: it goes to the focused text field, or nowhere."""
        if not isinstance(event, events.Key | events.Paste):
            return False
        hold = self.current
        if hold is not None:
            (hold.early if event.is_forwarded else hold.late).append(event)
            return True
        app = self._app
        if not event.is_forwarded:  # Textual gives it to the focused widget of this screen
            self._given[event] = app.screen
            return False
        given = self._given.pop(event, None)
        if given is None or given is app.screen:
            return False
        self._deliver([event], "as a dialog opened or closed")
        return True

    def misdirected(self, event: HeldEvent) -> None:
        """A key (or paste) reached a text field that has lost the focus: it is not typed
        there. While a hold is on it goes on up to the app, which holds it in the order typed;
        else it goes to the focused text field, or is dropped, never to a binding."""
        event.prevent_default()
        if self.current is None:
            event.stop()
            self._deliver([event], "as a dialog or the filter closed")

    def flushed(self, hold: Hold) -> None:
        hold.flushed = True
        self.settle(hold)

    def settle(self, hold: Hold) -> None:
        """End the hold once the marker is back and the opening is decided."""
        if hold is not self.current or not hold.flushed or hold.opened is None:
            return
        self.current = None
        held: list[HeldEvent] = [*hold.early, *hold.late]
        if hold.opened:
            self._deliver(held, "before the dialog was shown")
        elif held:
            self._dropped(len(held), "after a key that opened nothing")

    def _deliver(self, held: list[HeldEvent], when: str) -> None:
        """To the focused widget if it takes text, as fresh events (these were forwarded or
        bubbled already), in order; else dropped."""
        app = self._app
        target = app.focused
        if not isinstance(target, Input):
            if held:
                self._dropped(len(held), when)
            return
        for event in held:
            copy: HeldEvent = (
                events.Key(event.key, event.character)
                if isinstance(event, events.Key)
                else events.Paste(event.text)
            )
            copy.set_sender(app)  # as the driver does: the bubble ends at the app
            self._given[copy] = app.screen
            target._forward_event(copy)

    def _dropped(self, count: int, when: str) -> None:
        self._app.notify(
            f"{count} key(s) typed {when} were ignored: press them again if you meant them.",
            title="Keys ignored",
            severity="warning",
            markup=False,
        )
