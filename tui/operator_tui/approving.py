"""What ``a`` asks before it approves, and what it says when approve cannot apply.

A low- or medium-risk action is approved with one key. A high-risk action (or one whose
risk is not known) asks first, naming it and showing what it will run, as the detail view
does. A workflow step is approved only with its workflow: ``a`` on one offers the workflow,
listing its steps; ``a`` on a workflow asks when one of its steps is high risk.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from operator_core.errors import InvalidTransitionError
from operator_core.safe_text import visible
from rich.text import Text

from operator_tui.data import Target, action_target, awaits_approval, workflow_target

if TYPE_CHECKING:
    from operator_core.db.actions import ActionDB
    from operator_core.model.types import ActionProposal
    from operator_core.subjects.base import Subject

Risk = Callable[[str], "str | None"]
"""An action's name → its risk (``low``, ``medium``, ``high``), None when not known."""

ONE_KEY = frozenset({"low", "medium"})
RISK_STYLE = {"medium": "yellow", "high": "bold red"}
PREVIEW_LINES = 8
"""Lines of a preview the dialog shows (the detail view has the rest)."""


@dataclass(frozen=True)
class Question:
    title: str
    body: Text
    confirm: str
    decided: Target
    """What is approved once confirmed (a step's workflow, for a step)."""


def asks_first(target: Target, risk: Risk) -> bool:
    """Approving ``target`` asks first: a workflow step (its workflow is what is approved),
    a workflow with a step not known to be low or medium risk, an action likewise."""
    if target.step_of is not None:
        return True
    if not target.actions:
        return True
    return any(risk(name) not in ONE_KEY for name in target.actions)


def risk_word(risk: str | None) -> str:
    return "HIGH risk" if risk == "high" else f"{risk} risk" if risk else "risk not known"


def why_not(decision: str, target: Target) -> str | None:
    """The one line for a decision that cannot apply to ``target`` as it was read, else
    None."""
    if target.can is None or decision in target.can:
        return None
    if decision == "cancel":
        return f"{target.label} has finished: nothing to cancel."
    if target.kind == "action" and "cancel" in target.can and target.step_of is None:
        return f"{target.label} is not awaiting approval: nothing to {decision}."
    if target.step_of is not None:
        return (
            f"{target.label} is a step of wf{target.step_of}, which is not awaiting approval: "
            f"nothing to {decision}."
        )
    return f"{target.label} is not awaiting approval: nothing to {decision}."


async def approve_question(
    db: ActionDB, subject: Subject | None, risk: Risk, target: Target
) -> Question:
    """The dialog for approving ``target`` (read now, so it shows what is approved);
    OperatorError when it no longer awaits approval."""
    if target.kind == "action" and target.step_of is None:
        p = await db.get_proposal(target.id)
        if p is None:
            raise InvalidTransitionError(f"{target.label} no longer exists")
        if "approve" not in (action_target(p).can or ()):
            state = "rejected" if p.rejected_at is not None else p.status.value
            raise InvalidTransitionError(f"{target.label} is {state}: not awaiting approval")
        name = visible(p.action_name)
        body = Text()
        body.append(f"#{p.id} {name} is {risk_word(risk(p.action_name))}.", style="bold")
        body.append(" Approved, a runner executes it:\n\n")
        _describe(body, p, subject)
        return Question(f"Approve #{p.id} {name}?", body, "Approve it", target)
    workflow_id = target.step_of if target.step_of is not None else target.id
    wf = await db.get_workflow(workflow_id)
    if wf is None:
        raise InvalidTransitionError(f"workflow wf{workflow_id} no longer exists")
    if not awaits_approval(wf):
        state = "rejected" if wf.rejected_at is not None else wf.status.value.replace("_", " ")
        raise InvalidTransitionError(f"workflow wf{wf.id} is {state}: not awaiting approval")
    steps = await db.list_workflow_actions(workflow_id)
    body = Text()
    if target.step_of is not None:
        order = next((s.execution_order + 1 for s in steps if s.id == target.id), "?")
        body.append(
            f"#{target.id} is step {order} of workflow wf{wf.id}: steps are approved as "
            "their workflow.\n\n"
        )
    body.append(f"Approving wf{wf.id} {visible(wf.name)} approves all {len(steps)} steps", "bold")
    body.append(", run in order:\n")
    for s in steps:
        body.append(f"  {s.execution_order + 1}. #{s.id} {visible(s.action_name)}  ")
        step_risk = risk(s.action_name)
        body.append(risk_word(step_risk), style=RISK_STYLE.get(step_risk or "high", ""))
        body.append(f"  {_params(s.parameters)}\n")
    for s in steps:
        if risk(s.action_name) not in ONE_KEY:
            body.append(f"\nStep {s.execution_order + 1} will run:\n", style="bold")
            body.append_text(_preview(s, subject))
    decided = workflow_target(wf)
    return Question(f"Approve workflow wf{wf.id}?", body, f"Approve wf{wf.id}", decided)


def bulk_lines(targets: list[Target], risk: Risk) -> Text:
    """The marked rows a bulk approve lists, each with its risk; the high ones said first."""
    high = [t for t in targets if any(risk(n) not in ONE_KEY for n in t.actions or ("",))]
    text = Text()
    if high:
        text.append(
            f"{len(high)} of them high risk (or not known): "
            + ", ".join(t.name for t in high)
            + "\n\n",
            style="bold red",
        )
    text.append("This will approve each of:\n")
    for t in targets:
        risks = [risk(n) for n in t.actions] or [None]
        worst = "high" if "high" in risks or None in risks else max(risks, key=str)
        text.append(f"  • {t.label}  ")
        text.append(risk_word(worst), style="bold red" if t in high else "")
        text.append("\n")
    return text


def _describe(body: Text, p: ActionProposal, subject: Subject | None) -> None:
    body.append("Parameters  ", style="dim")
    body.append(f"{_params(p.parameters)}\n")
    body.append("Reason      ", style="dim")
    body.append(f"{visible(' '.join(p.reason.split()))}\n")
    body.append("Will run\n", style="dim")
    body.append_text(_preview(p, subject))


def _preview(p: ActionProposal, subject: Subject | None) -> Text:
    """The subject's preview of what ``p`` runs (its command or request), as the detail
    view shows it, cut to PREVIEW_LINES lines."""
    if subject is None:
        return Text("  (the subject is not loaded: no preview)\n", style="dim")
    try:
        preview = subject.preview(p.action_name, dict(p.parameters))
    except Exception as exc:  # a subject's preview must never break the dialog
        return Text(f"  (preview failed: {exc})\n", style="red")
    if not preview:
        return Text("  (the subject gives no preview)\n", style="dim")
    lines = preview.split("\n")
    shown = [f"  {visible(line)}" for line in lines[:PREVIEW_LINES]]
    if len(lines) > PREVIEW_LINES:
        shown.append(f"  … {len(lines) - PREVIEW_LINES} more lines in the detail view")
    return Text("\n".join(shown) + "\n")


def _params(parameters: dict[str, Any]) -> str:
    text = " ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}"
        for k, v in parameters.items()
    )
    return visible(text) or "—"
