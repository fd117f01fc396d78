"""How the CLI writes values, without Typer: JSON as text, times, parameters, an action's
state in one label, the counts by state. ``output`` prints with them; ``fast`` (the reading
commands' fast path) too, so both write the same bytes."""

from __future__ import annotations

from operator_core import jsontext
from operator_core.clock import UTC, datetime
from operator_core.model.states import ActionStatus
from operator_core.safe_text import json_visible, visible

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


def json_text(data: Any) -> str:
    """JSON as a program reads it: non-ASCII text as itself, control and format characters
    escaped (see ``json_visible``), every time in UTC with a Z."""
    text = jsontext.dumps(data, indent=2, default=str, sort_keys=True, ensure_ascii=False)
    return json_visible(text)


def table_text(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows under a header as a pipe gets them: tab-separated, never cut, every cell
    escaped (``visible``), so a value holds no tab or newline that could add a column or a
    row."""
    cells = [[visible(c) for c in row] for row in rows]
    return "\n".join("\t".join(row) for row in [list(columns), *cells])


def json_line(data: Any) -> str:
    """``data`` as JSON on one line, for text output (non-ASCII as itself, as ``emit``)."""
    return json_visible(jsontext.dumps(data, default=str, sort_keys=True, ensure_ascii=False))


def param_text(value: Any) -> str:
    return value if isinstance(value, str) else jsontext.dumps(value, default=str)


def params_line(parameters: dict[str, Any]) -> str:
    return " ".join(f"{k}={param_text(v)}" for k, v in parameters.items())


def fmt_time(value: datetime | str | None) -> str:
    """A time for people: UTC to the second, in the same ISO 8601 form as the JSON
    (``2026-12-03T06:14:19Z``); a stored or JSON time string is read first."""
    if not value:
        return "-"
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def json_time(dt: datetime | None) -> str | None:
    """A time for programs: UTC with microseconds and a Z, as every model's JSON has it."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def state_label(p: Any) -> str:
    """An action (model or view) in one label."""
    if p.awaiting_approval:
        return "awaiting approval"
    if p.is_retry_waiting:
        return f"retry {p.retry_count}/{p.max_retries} at {fmt_time(p.next_retry_at)}"
    if p.status == ActionStatus.VALIDATED and p.scheduled_at:
        return f"scheduled {fmt_time(p.scheduled_at)}"
    if p.status == ActionStatus.CANCELLED and p.cancel_reason:
        return f"cancelled ({visible(p.cancel_reason)})"
    return p.status.value


def by_state(by_status: dict[str, int], retry_waiting: int) -> dict[str, int]:
    """Counts by status, where an action waiting for its retry is not "failed" (it is
    stored so until it runs again) but "retry_waiting"."""
    out = dict(by_status)
    if retry_waiting:
        failed = out.pop("failed", 0) - retry_waiting
        if failed:
            out["failed"] = failed
        out["retry_waiting"] = retry_waiting
    return out


ACTION_COLUMNS = ("ID", "ACTION", "PARAMETERS", "STATE", "WF", "PROPOSED", "BY")
WORKFLOW_COLUMNS = ("ID", "NAME", "STATUS", "STEPS", "APPROVAL")


def action_row(p: Any) -> tuple[str, ...]:
    """A row of ``actions list`` (a proposal or its plain view: both paths print it)."""
    return (
        str(p.id),
        p.action_name,
        params_line(p.parameters),
        state_label(p),
        str(p.workflow_id or ""),
        fmt_time(p.proposed_at),
        p.proposed_by,
    )


def workflow_row(w: Any, steps: Sequence[Any]) -> tuple[str, ...]:
    """A row of ``workflows list``: the workflow and its steps (models or plain views)."""
    done = sum(1 for s in steps if s.status == ActionStatus.COMPLETED)
    approval = (
        "approved"
        if w.approved_at
        else ("awaiting approval" if w.requires_approval and w.status.value == "pending" else "")
    )
    return (str(w.id), w.name, w.status.value, f"{done}/{len(steps)} steps", approval)


def workflow_lines(wf: Any, steps: Sequence[Any], who: dict[str, Any]) -> list[str]:
    """``workflows show`` in text: the workflow, its approver, its steps (models or views)."""
    lines = [
        f"workflow {wf.id}: {visible(wf.name)}  [{wf.status.value}]  {visible(wf.description)}"
    ]
    if wf.approved_by:
        from operator_core.identity import actor_text

        approver = actor_text(wf.approved_by, who["approved_identity"] or "?")
        lines.append(f"  approved by {visible(approver)} at {fmt_time(wf.approved_at)}")
    for s in steps:
        lines.append(
            f"  {s.execution_order + 1}. #{s.id} {visible(s.action_name)} "
            f"{visible(params_line(s.parameters))}  [{state_label(s)}]"
        )
    return lines


AUTOMATION_COLUMNS = ("NAME", "VERSION", "ENABLED", "SCOPE", "TRIGGER", "CHANGED", "BY")
EXECUTION_COLUMNS = ("ID", "AUTOMATION", "VERSION", "TICKET", "STATUS", "NODE", "NODES", "STARTED")


def automation_row(a: Any) -> tuple[str, ...]:
    """An ``Automation`` (db/automation_rows.py) as ``automations list`` shows it."""
    return (
        a.name,
        str(a.current_version),
        "yes" if a.enabled else "no",
        a.scope,
        a.trigger_event,
        fmt_time(a.updated_at),
        a.updated_by,
    )


def execution_row(e: Any) -> tuple[str, ...]:
    """An ``Execution`` as ``automations executions`` shows it; NODES is done/all."""
    nodes = len(e.definition.get("nodes", []))
    return (
        str(e.id),
        e.automation_name,
        str(e.version),
        str(e.ticket_id),
        e.status,
        e.current_node or "-",
        f"{len(e.state.completed_nodes)}/{nodes}",
        fmt_time(e.created_at),
    )


def model_json(view: Any) -> dict[str, Any]:
    """A view's values as its model's ``model_dump(mode="json")``."""
    out = {}
    for key, value in view.__dict__.items():
        if value is None or isinstance(value, bool | int | float | dict | list):
            out[key] = value
        elif hasattr(value, "_value_"):
            out[key] = value.value
        elif hasattr(value, "isoformat"):
            text = value.isoformat()
            out[key] = text[:-6] + "Z" if text.endswith("+00:00") else text
        else:
            out[key] = value
    return out
