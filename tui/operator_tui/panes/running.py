"""#running: what executes now (its runner, since when, its lease) and the approved work
that is due and waits for a runner, in the order the next claim takes it."""

from __future__ import annotations

from datetime import datetime

from operator_core.db.running import InHand
from rich.console import RenderableType
from rich.text import Text

from operator_tui.data import DashboardData, action_target
from operator_tui.format import CELL_LIMIT, age, attempt_of, clip, countdown
from operator_tui.panes.base import PaneTable, Row


def lease(h: InHand, now: datetime) -> Text:
    """The lease's countdown; past it, the runner is late and maybe lost (red)."""
    until = h.proposal.lease_expires_at
    if not h.executing or until is None:
        return Text("—", style="dim")
    if until <= now:
        return Text("lapsed", style="bold red")
    return countdown(until, now)


def state(h: InHand) -> Text:
    if h.budget is not None:
        return Text("⧗ budget", style="yellow")
    if not h.executing:
        return Text("· ready")
    if h.proposal.cancel_requested:
        return Text("■ stopping", style="bold yellow")
    return Text("▶ executing", style="bold")


def holder(h: InHand, now: datetime) -> str:
    """Who holds it, or what it waits for: a runner, or its budget's next slot."""
    if h.budget is not None:
        return h.budget.describe(now)
    return h.proposal.claimed_by or "waiting for a runner"


class RunningPane(PaneTable):
    TITLE = "Running"
    # The runner last: a long host:pid:token is what a narrow pane cuts.
    COLUMNS = (
        ("id", "ID", 5),
        ("action", "Action", 12),
        ("state", "State", 11),
        ("since", "Since", 8),
        ("lease", "Lease", 7),
        ("attempt", "Attempt", 7),
        ("runner", "Runner", 10),
    )
    GROW = {"action": 1, "runner": 2}
    # Narrow, who holds it and its lease stay (a lapsed lease is a lost runner).
    DROP = ("attempt", "since", "runner")
    TICKING = ("since", "lease", "runner")  # the runner column counts down a budget's slot
    EMPTY = "nothing running or due"

    def total(self, data: DashboardData) -> int:
        return len(data.running) + len(data.queued)

    def rows_for(self, data: DashboardData, now: datetime) -> list[Row]:
        rows = []
        for h in [*data.running, *data.queued]:
            p = h.proposal
            target = action_target(p)
            rows.append(
                Row(
                    key=target.key,
                    cells=lambda h=h, p=p: (
                        f"#{p.id}",
                        Text(clip(p.action_name, CELL_LIMIT), style="bold"),
                        state(h),
                        age(h.attempt_started or h.waiting_since, now),
                        lease(h, now),
                        attempt_of(p).removeprefix("attempt "),  # under "Attempt": "2 of 4"
                        clip(holder(h, now), CELL_LIMIT),
                    ),
                    target=target,
                    search=lambda p=p: f"#{p.id} {p.action_name} {p.claimed_by or ''}",
                    model=h,
                )
            )
        return rows

    def tick_cells(self, row: Row, now: datetime) -> dict[str, RenderableType]:
        h: InHand = row.model
        return {
            "since": age(h.attempt_started or h.waiting_since, now),
            "lease": lease(h, now),
            "runner": clip(holder(h, now), 28),
        }

    def tick_times(self, row: Row) -> tuple[datetime | None, ...] | None:
        h: InHand = row.model
        return (
            h.attempt_started or h.waiting_since,
            h.proposal.lease_expires_at,
            h.budget.next_slot_at if h.budget else None,
        )
