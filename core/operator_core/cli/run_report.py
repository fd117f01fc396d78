"""How ``operator run`` reports: a log line per attempt on stderr, and at the end what became
of the actions it ran, read back from the database (a failed attempt whose action waits for
a retry has not failed yet)."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from operator_core.cli.output import fmt_time
from operator_core.model.states import ActionStatus

if TYPE_CHECKING:
    from operator_core.actions.executor import ActionExecutor


class _UTCFormatter(logging.Formatter):
    converter = time.gmtime


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a line is logged (not when made)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


_handler = _Stderr()
_handler.setFormatter(_UTCFormatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ"))


def log_to_stderr(level: int) -> None:
    """The runner's log (``operator.*``) on stderr at ``level``: INFO is a line per
    attempt, DEBUG also its start, WARNING only trouble. Other libraries stay at WARNING.
    Once per process, however often a command runs in it (as in the tests)."""
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.getLogger("operator").setLevel(level)


@dataclass
class Outcomes:
    """The actions a runner attempted (or recovered), by where they ended up."""

    completed: int = 0
    failed: int = 0
    retrying: int = 0
    cancelled: int = 0
    pending: int = 0
    recovered: int = 0
    next_retry: datetime | None = field(default=None)

    def summary(self) -> str:
        retry = f" (next at {fmt_time(self.next_retry)})" if self.next_retry else ""
        parts = [
            f"{self.completed} completed",
            f"{self.failed} failed for good",
            f"{self.retrying} waiting for retry{retry}",
            f"{self.cancelled} cancelled",
        ]
        if self.pending:
            parts.append(f"{self.pending} not finished")
        parts.append(f"{self.recovered} recovered")
        return ", ".join(parts)


async def outcomes(ex: ActionExecutor, ids: set[int], recovered: int) -> Outcomes:
    """Each action's state now: one read each, as many as the runner ran."""
    out = Outcomes(recovered=recovered)
    for pid in sorted(ids):
        p = await ex.db.get_proposal(pid)
        if p is None:
            continue
        if p.status == ActionStatus.COMPLETED:
            out.completed += 1
        elif p.is_retry_waiting:
            out.retrying += 1
            if p.next_retry_at and (out.next_retry is None or p.next_retry_at < out.next_retry):
                out.next_retry = p.next_retry_at
        elif p.status == ActionStatus.FAILED:
            out.failed += 1
        elif p.status == ActionStatus.CANCELLED:
            out.cancelled += 1
        else:
            out.pending += 1  # put back by a shutdown, or running elsewhere
    return out
