"""How times, parameters and states read on screen: UTC everywhere, short and fixed-width."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from operator_core.model.states import ActionStatus
from operator_core.safe_text import visible
from rich.text import Text

if TYPE_CHECKING:
    from operator_core.model.types import ActionProposal
    from operator_core.model.views import ProposalView


def clock_time(at: datetime | None) -> str:
    """``09:30:05Z``: the engine stores UTC, so the dashboard shows UTC."""
    return at.strftime("%H:%M:%SZ") if at is not None else "—"


def full_time(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%SZ") if at is not None else "—"


def duration(seconds: float) -> str:
    """``<5s``, ``45s``, ``4m``, ``2h 03m``, ``3d 4h``: a countdown an operator reads at a
    glance. Seconds show only in the last minute, in steps of five, as often as the dashboard
    updates them (``TICK_INTERVAL``); the exact time is in the column beside it. Above a
    minute, a row repaints once a minute: every line that changes costs the dashboard a
    redraw, and a long retry backlog would keep it busy."""
    s = int(round(abs(seconds)))
    if s < 5:
        return "<5s"
    if s < 60:
        return f"{s - s % 5}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def steady_for(seconds: float) -> float:
    """How long, at least, ``duration(seconds)`` keeps reading the same while ``seconds``
    moves one per second either way (0: it may change within a second). In the last minute it
    shows seconds; above, it changes only as a whole minute is crossed (at ``k * 60 - 0.5``,
    as it rounds), so rows far from due need not be recomputed at every tick."""
    s = abs(seconds)
    if s < 61:
        return 0.0
    into = s % 60
    return max(0.0, min(into, 60 - into) - 1.0)


def countdown(target: datetime | None, now: datetime) -> Text:
    """Time left until ``target``; ``due`` (highlighted) once it has passed."""
    if target is None:
        return Text("—", style="dim")
    left = (target - now).total_seconds()
    if left <= 0:
        return Text("due now", style="bold")
    return Text(f"in {duration(left)}")


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "—"
    return f"{duration((now - since).total_seconds())} ago"


def params(parameters: dict[str, Any], limit: int = 48) -> str:
    """``region_id=7 to_store_id=s2``, cut to ``limit`` characters."""
    text = " ".join(f"{k}={_value(v)}" for k, v in parameters.items())
    return clip(text or "—", limit)


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, default=str)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


CELL_LIMIT = 300
"""Characters kept of a text column's value: more than the widest pane shows (the column
cuts it with an ellipsis); the whole value is in the detail view."""


def clip(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters; control characters (an agent's ESC
    sequences, bidi overrides) are shown as escapes, never sent to the terminal."""
    text = visible(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str) -> Text:
    """A value as written, on one line: not read as Rich markup, control characters (a
    newline too) shown as escapes, so it cannot pass for another field."""
    return Text(visible(text))


def plain_lines(text: str) -> Text:
    """Text with lines of its own (indented JSON, a request preview): each line as
    ``plain`` shows it, the line breaks kept."""
    return Text("\n".join(visible(line) for line in text.split("\n")))


def short_path(path: Path | str, limit: int = 40) -> str:
    """The database path as the operator gave it, ``~`` for home, cut from the left; a
    text (a PostgreSQL URL, already redacted) only cut."""
    text = visible(path)
    home = os.path.expanduser("~")
    if isinstance(path, Path) and path.is_absolute() and text.startswith(home + os.sep):
        text = "~" + text[len(home) :]
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


STATUS_MARK = {
    ActionStatus.PROPOSED: ("·", "proposed"),
    ActionStatus.VALIDATED: ("·", "pending"),
    ActionStatus.EXECUTING: ("▶", "executing"),
    ActionStatus.COMPLETED: ("✓", "completed"),
    ActionStatus.FAILED: ("✗", "failed"),
    ActionStatus.CANCELLED: ("⊘", "cancelled"),
}

STATUS_STYLE = {
    ActionStatus.EXECUTING: "bold",
    ActionStatus.COMPLETED: "green",
    ActionStatus.FAILED: "red",
    ActionStatus.CANCELLED: "dim",
}


def step_state(p: ProposalView | ActionProposal, now: datetime) -> Text:
    """One workflow step's state, readable without colour: a mark and a word."""
    mark, word = STATUS_MARK[p.status]
    if p.is_retry_waiting:
        mark, word = "↻", f"retry {p.retry_count + 1} of {p.max_retries + 1}"
    elif p.status == ActionStatus.VALIDATED and p.scheduled_at is not None:
        left = (p.scheduled_at - now).total_seconds()
        word = f"due in {duration(left)}" if left > 0 else "due"
    elif p.status == ActionStatus.VALIDATED and p.depends_on_proposal_id is not None:
        word = "waiting"
    style = STATUS_STYLE.get(p.status, "")
    if p.is_retry_waiting:
        style = "yellow"
    return Text(f"{mark} {word}", style=style)


def finished_state(p: ProposalView | ActionProposal) -> Text:
    """How a finished action ended, in the words every surface uses: completed, failed,
    rejected, cancelled or expired (a mark and a word, readable without colour)."""
    if p.status == ActionStatus.COMPLETED:
        return Text("✓ completed", style="green")
    if p.status == ActionStatus.FAILED:
        return Text("✗ failed", style="red")
    if p.rejected_at is not None:
        return Text("⊘ rejected", style="yellow")
    if p.cancel_reason == "expired":
        return Text("◌ expired", style="dim")
    return Text("⊘ cancelled", style="dim")


def attempt_of(p: ProposalView | ActionProposal) -> str:
    """The attempt running or next (``attempt 2 of 4``): the same words on every surface."""
    return f"attempt {p.retry_count + 1} of {p.max_retries + 1}"


def approval_state(p: ProposalView | ActionProposal) -> str:
    if p.rejected_at is not None:
        return f"rejected by {p.rejected_by}"
    if p.approved_at is not None:
        return f"approved by {p.approved_by}"
    if not p.requires_approval:
        return "not required"
    return "awaiting approval"


AUTOMATION_ACTOR = "automation:"  # db.executions.AUTOMATION_ACTOR, without importing the db


def proposer(name: str, width: int) -> str:
    """Who proposed, in ``width``: an automation as ``⚙ NAME`` (its name is what the
    approver needs, not the prefix every automation shares)."""
    if name.startswith(AUTOMATION_ACTOR):
        return clip("⚙ " + name[len(AUTOMATION_ACTOR) :], width)
    return clip(name, width)
