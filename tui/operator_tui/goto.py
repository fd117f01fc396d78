"""The keys that go to a pane or a view, from the dashboard and the views alike: ``1``-``5``
the panes (in ``PANES`` order), ``H`` the History view, ``L`` the Audit log, and ``:`` a
prompt that takes any of their names (or a prefix only one of them starts with)."""

from __future__ import annotations

from textual.binding import Binding

from operator_tui.panes import PANES

GOTO = [
    *(
        Binding(str(n), f"app.goto('{pane_id}')", f"Go to {title}", show=False)
        for n, (pane_id, title, _) in enumerate(PANES, start=1)
    ),
    Binding("H", "app.goto('history')", "History"),
    Binding("L", "app.goto('audit')", "Audit log", show=False),
    Binding(
        "colon", "app.goto_prompt", "Go to a pane or view by name", key_display=":", show=False
    ),
]

PLACES: tuple[str, ...] = (*(pane_id for pane_id, _, _ in PANES), "history", "audit", "automations")
"""Every name ``:`` takes, as ``app.goto`` takes it."""

ALIASES = {"log": "audit", "events": "audit"}


def resolve(typed: str) -> str | list[str]:
    """The place ``typed`` names, or the places it could name (none: unknown; several: a
    prefix of more than one). A whole name wins over a longer one it starts."""
    word = typed.strip().lower()
    if not word:
        return []
    names = {**{p: p for p in PLACES}, **ALIASES}
    if word in names:
        return names[word]
    found = sorted({place for name, place in names.items() if name.startswith(word)})
    return found[0] if len(found) == 1 else found
