"""The keys that go to a pane or a view, from the dashboard and the History view alike:
``1``-``5`` the panes (in ``PANES`` order), ``H`` the History view."""

from __future__ import annotations

from textual.binding import Binding

from operator_tui.panes import PANES

GOTO = [
    *(
        Binding(str(n), f"app.goto('{pane_id}')", f"Go to {title}", show=False)
        for n, (pane_id, title, _) in enumerate(PANES, start=1)
    ),
    Binding("H", "app.goto('history')", "History"),
]
