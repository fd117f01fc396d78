"""A database the runner cannot use for now: locked by another process past the busy timeout,
full, an I/O error. A runner is a daemon: it keeps in memory what it could not record, says
so once when the trouble starts and once when it ends (not a line per try), waits a little
longer after each failed turn, up to a bound, and carries on. It exits only on a signal.
"""

from __future__ import annotations

import logging
import time

from operator_core.db.faults import describe, trouble


class Outage:
    """The state of the runner's trouble with its database, one turn of its loop at a time."""

    def __init__(self, log: logging.Logger, first: float = 0.05, longest: float = 2.0) -> None:
        self._log = log
        self._first = first
        self._longest = longest
        self.delay = 0.0
        """How long to wait before the next turn while the trouble lasts."""
        self._kind: str | None = None
        self._since = 0.0
        self._failed = False
        self._tries = 0

    @property
    def active(self) -> bool:
        return self._kind is not None

    def failed(self, exc: BaseException, doing: str, unrecorded: int) -> None:
        """Something the runner had to do failed (``doing``: what). Logged once per kind of
        trouble; the backoff grows at the end of the turn (``settle``)."""
        self._failed = True
        kind = trouble(exc) or f"error: {type(exc).__name__}"
        if kind == self._kind:
            return
        if self._kind is None:
            self._since = time.monotonic()
            self._tries = 0
        self._kind = kind
        keeping = f"; keeping {unrecorded} outcome(s) to record" if unrecorded else ""
        if trouble(exc) is None:
            # Not the database: a defect. Its traceback, once; the runner still goes on.
            self._log.error(
                "runner could not %s (%s)%s; trying again, waiting up to %gs",
                doing,
                describe(exc),
                keeping,
                self._longest,
                exc_info=exc,
            )
        else:
            self._log.warning(
                "runner could not %s: %s%s; waiting for the database, trying "
                "again every %gs at most",
                doing,
                str(exc).removesuffix("; try again"),
                keeping,
                self._longest,
            )

    def settle(self) -> None:
        """The end of a turn: back off further if anything failed in it, else end the
        trouble (and say so)."""
        if self._failed:
            self._failed = False
            self._tries += 1
            self.delay = min(self._longest, max(self._first, self.delay * 2))
        elif self._kind is not None:
            self._log.warning(
                "runner: the database is usable again after %.1fs (%d tries)",
                time.monotonic() - self._since,
                self._tries,
            )
            self._kind = None
            self.delay = 0.0
