"""What the dashboard benchmark launches in a pseudo-terminal, one process per measurement.

    python -m bench.dashboard_app operator DB   the real dashboard (OperatorApp), instrumented
    python -m bench.dashboard_app naive DB      the baseline: one DataTable with every row
    python -m bench.dashboard_app empty -       the floor: an empty Textual app

Each reports JSON lines on the file descriptor named by ``BENCH_REPORT_FD``:
``{"event": "paint", "shows": TEXT, "written": N, ...}`` once its first frame with data has
been drawn, where TEXT is what that frame shows and no earlier frame could, and N the bytes
written to the terminal up to the end of that frame (the bench times the first paint by when
the terminal had received all N, the whole frame, not just TEXT inside it); and, for the real
dashboard, ``{"event": "gone", ...}`` once the approvals pane no longer shows the row that was
first in it (another process approved it).
"""

from __future__ import annotations

import inspect
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

EMPTY_KEY = "-empty-"


WRITTEN = [0]
"""Bytes handed to the terminal so far (``count_output``)."""
FRAMES: list[tuple[int, str]] = []
"""(bytes written by its end, its text) of each write until the first frame with data is
reported: Textual hands each frame whole to its writer."""


def report(event: str, **data: Any) -> None:
    """For ``paint``, ``written`` is where on the terminal the first frame that shows
    ``data["shows"]`` ends. The report itself runs later (``call_after_refresh`` waits
    behind the messages queued at start), by when Textual had drawn up to four more frames,
    none changing a cell: counting to the end of the last of those timed them too."""
    written = WRITTEN[0]
    if event == "paint":
        shows = data["shows"]
        written = next((end for end, text in FRAMES if shows in text), written)
        FRAMES.clear()
        FRAMES.append((-1, ""))  # no more kept (see ``count_output``)
    fd = int(os.environ["BENCH_REPORT_FD"])
    line = {"event": event, "t": time.time(), "written": written, **data}
    os.write(fd, (json.dumps(line) + "\n").encode())


def count_output() -> None:
    """Count the bytes every frame takes on the terminal. Textual hands each frame whole to
    its writer thread, which writes it to the terminal (stderr) in that stream's encoding;
    a report made after a frame was drawn says where on the terminal that frame ends."""
    from textual.drivers._writer_thread import WriterThread

    encoding = sys.__stderr__.encoding if sys.__stderr__ is not None else "utf-8"
    write = WriterThread.write

    def counted(self: WriterThread, text: str) -> None:
        WRITTEN[0] += len(text.encode(encoding, "replace"))
        if not FRAMES or FRAMES[-1][0] != -1:
            FRAMES.append((WRITTEN[0], text))
        write(self, text)

    WriterThread.write = counted  # type: ignore[method-assign]


def _beside(cls: type, css: Any) -> Any:
    if isinstance(css, str | Path) and not Path(css).is_absolute():
        return str(Path(inspect.getfile(cls)).parent / css)
    return css


def operator_app(db: Path | str) -> Any:
    from operator_tui import load_app
    from textual.widgets import DataTable

    OperatorApp = load_app()  # as ``operator tui`` does

    def subject() -> Any:
        """Loaded after the first frame, as ``operator tui`` loads its ``--subject``."""
        from operator_core.subjects.loader import load_subject

        from bench.common import NOOP_SUBJECT

        return load_subject(NOOP_SUBJECT)

    class InstrumentedApp(OperatorApp):
        """The real dashboard; reports its first paint with data and when a watched approval
        leaves the approvals pane."""

        # Textual resolves a relative CSS_PATH beside the subclass; keep the dashboard's own.
        CSS_PATH = _beside(OperatorApp, OperatorApp.CSS_PATH)

        painted = False
        watched: str | None = None
        gone = False

        def _approval_keys(self) -> list[str]:
            table = self.screen.query_one("#approvals", DataTable)
            return [k.value for k in table.rows if k.value and k.value != EMPTY_KEY]

        def _show(self, loaded: Any, events: Any) -> None:
            super()._show(loaded, events)
            keys = self._approval_keys()
            if not self.painted:
                self.painted = True
                self.watched = keys[0] if keys else None
                # The pane's title carries the count read from the database: no frame shows
                # it before the data.
                shows = str(self.screen.query_one("#approvals", DataTable).border_title)
                self.call_after_refresh(
                    report, "paint", first=self.watched, rows=len(keys), shows=shows
                )
            elif self.watched is not None and not self.gone and self.watched not in keys:
                self.gone = True
                self.call_after_refresh(report, "gone", key=self.watched)

    return InstrumentedApp(db, subject_loader=subject, actor="bench@dashboard")


def naive_app(db: Path) -> Any:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class NaiveApp(App[None]):
        """The shape the dashboard must not take: every row of every action in one table."""

        def compose(self) -> ComposeResult:
            yield DataTable(id="all")

        def on_mount(self) -> None:
            conn = sqlite3.connect(db)
            cursor = conn.execute("SELECT * FROM action_proposals ORDER BY id")
            rows = cursor.fetchall()
            table = self.query_one(DataTable)
            table.add_columns(*(d[0] for d in cursor.description))
            table.add_rows(rows)
            conn.close()
            # Filled before its first frame: the header's column names come with the rows.
            self.call_after_refresh(report, "paint", rows=len(rows), shows="action_name")

    return NaiveApp()


def empty_app() -> Any:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class EmptyApp(App[None]):
        """The floor: a Textual app with nothing in it but one word (what the bench waits
        to see on the terminal)."""

        def compose(self) -> ComposeResult:
            yield Static("ready")

        def on_mount(self) -> None:
            self.call_after_refresh(report, "paint", rows=0, shows="ready")

    return EmptyApp()


def main() -> None:
    from operator_core.db.url import is_postgres_url

    mode, given = sys.argv[1], sys.argv[2]
    db = given if is_postgres_url(given) else Path(given)  # a URL kept whole: Path folds "//"
    count_output()
    apps = {"operator": operator_app, "naive": naive_app}
    app = apps[mode](db) if mode in apps else empty_app()
    app.run()


if __name__ == "__main__":
    main()
