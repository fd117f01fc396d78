"""#approvals: single actions and whole workflows waiting for a human decision, each with its
risk (a word and a colour, readable without colour), its proposer and its expiry."""

from __future__ import annotations

from datetime import datetime

from operator_core.model.views import ProposalView
from rich.console import RenderableType
from rich.text import Text

from operator_tui.data import DashboardData, action_target, workflow_target
from operator_tui.format import CELL_LIMIT, age, clip, countdown, params, proposer
from operator_tui.panes.base import PaneTable, Row

RISK_ORDER = {"low": 0, "medium": 1, "high": 2}
RISK_STYLE = {"low": "green", "medium": "yellow", "high": "bold red"}


def risk_cell(risk: str | None) -> Text:
    """``high`` in bold red, ``medium`` yellow, ``low`` green; ``?`` until the subject's
    definitions are read (or for an action it no longer offers)."""
    if risk is None:
        return Text("?", style="dim")
    return Text(risk, style=RISK_STYLE.get(risk, ""))


def voided_cell(reason: str) -> Text:
    """Why an approval was voided, in place of the reason: the next approver reads it
    first (the proposer's reason stays in the detail view). (The fingerprint code is
    imported here, by the rare row that needs it: the first frame does not.)"""
    from operator_core.actions.fingerprint import CHANGED

    what = reason.removeprefix(CHANGED).lstrip(": ")
    return Text.assemble(("⚠ changed since approval: ", "bold yellow"), clip(what, 34))


def highest(risks: list[str | None]) -> str | None:
    known = [r for r in risks if r is not None]
    return max(known, key=lambda r: RISK_ORDER.get(r, 0)) if known else None


class ApprovalsPane(PaneTable):
    TITLE = "Approvals"
    COLUMNS = (
        ("id", "ID", 5),
        ("what", "Action", 16),
        ("risk", "Risk", 6),
        ("age", "Waiting", 9),
        ("params", "Parameters / steps", 16),
        ("by", "Proposed by", 12),
        ("expires", "Expires", 9),
        ("reason", "Reason", 14),
    )
    GROW = {"what": 1, "params": 3, "reason": 3}
    # Risk, proposer and expiry stay at any width: what an approver decides on.
    DROP = ("age", "reason")
    TICKING = ("age", "expires")
    EMPTY = "nothing awaits approval"
    SORTS = ("age", "risk", "action")

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.risks: dict[str, str] = {}
        """Action name → risk, from the subject's definitions (read after the first frame)."""
        self._last: tuple[DashboardData, datetime] | None = None
        self._steps: dict[int, list[ProposalView]] = {}

    def show(self, data: DashboardData, now: datetime) -> None:
        self._last = (data, now)
        self._steps = data.steps
        super().show(data, now)

    def sort_key(self, row: Row, order: str) -> object:
        """By risk: the highest first (unknown last), the oldest first within one."""
        if order != "risk":
            return super().sort_key(row, order)
        model = row.model
        if hasattr(model, "action_name"):
            risk = self.risks.get(model.action_name)
        else:
            names = [s.action_name for s in self._steps.get(model.id or 0, [])]
            risk = highest([self.risks.get(name) for name in names])
        return -RISK_ORDER.get(risk or "", -1)

    def set_risks(self, risks: dict[str, str]) -> None:
        """The subject's definitions are read: show each row's risk."""
        self.risks = risks
        if self._last is not None:
            self._unsorted = self.rows_for(*self._last)
            self._rows = self._ordered(self._unsorted)
            self._render_rows()

    def total(self, data: DashboardData) -> int:
        return data.counts.awaiting_approval + data.counts.workflows_awaiting_approval

    def rows_for(self, data: DashboardData, now: datetime) -> list[Row]:
        rows: list[tuple[datetime, Row]] = []
        for p in data.approvals:
            target = action_target(p)
            voided = data.voided.get(("action", p.id or 0))
            rows.append(
                (
                    p.proposed_at,
                    Row(
                        key=target.key,
                        cells=lambda p=p, voided=voided: (
                            f"#{p.id}",
                            Text(clip(p.action_name, CELL_LIMIT), style="bold"),
                            risk_cell(self.risks.get(p.action_name)),
                            age(p.proposed_at, now),
                            params(p.parameters, CELL_LIMIT),
                            proposer(p.proposed_by, CELL_LIMIT),
                            countdown(p.expires_at, now),
                            voided_cell(voided) if voided else clip(p.reason, CELL_LIMIT),
                        ),
                        target=target,
                        search=lambda p=p, voided=voided: (
                            f"#{p.id} {p.action_name} {self.risks.get(p.action_name, '')} "
                            f"{params(p.parameters, 500)} {p.proposed_by} {p.reason} "
                            f"{voided or ''}"
                        ),
                        model=p,
                    ),
                )
            )
        for wf in data.workflows_awaiting:
            target = workflow_target(wf, data.steps.get(wf.id or 0, []))
            names = [s.action_name for s in data.steps.get(wf.id or 0, [])]
            chain = f"{len(names)} steps: " + " → ".join(names)
            risk = highest([self.risks.get(name) for name in names])
            voided = data.voided.get(("workflow", wf.id or 0))
            rows.append(
                (
                    wf.created_at,
                    Row(
                        key=target.key,
                        cells=(
                            f"wf{wf.id}",
                            Text.assemble(
                                ("workflow ", "italic"), (clip(wf.name, CELL_LIMIT), "bold")
                            ),
                            risk_cell(risk),
                            age(wf.created_at, now),
                            clip(chain, CELL_LIMIT),
                            proposer(wf.proposed_by, CELL_LIMIT),
                            Text("—", style="dim"),
                            voided_cell(voided) if voided else clip(wf.description, CELL_LIMIT),
                        ),
                        target=target,
                        search=(
                            f"wf{wf.id} workflow {wf.name} {risk or ''} {chain} {wf.proposed_by} "
                            f"{wf.description} {voided or ''}"
                        ),
                        model=wf,
                    ),
                )
            )
        rows.sort(key=lambda pair: pair[0])
        return [row for _, row in rows]

    def tick_cells(self, row: Row, now: datetime) -> dict[str, RenderableType]:
        since = getattr(row.model, "proposed_at", None) or getattr(row.model, "created_at", None)
        expires = getattr(row.model, "expires_at", None)
        cells: dict[str, RenderableType] = {"age": age(since, now)}
        if expires is not None:
            cells["expires"] = countdown(expires, now)
        return cells

    def tick_times(self, row: Row) -> tuple[datetime | None, ...] | None:
        since = getattr(row.model, "proposed_at", None) or getattr(row.model, "created_at", None)
        return (since, getattr(row.model, "expires_at", None))
