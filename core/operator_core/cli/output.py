"""How the CLI prints: JSON, times, parameters, an action's state in one label."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from operator_core.model.states import ActionStatus
from operator_core.safe_text import visible

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from operator_core.model.types import ActionProposal


def emit(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, sort_keys=True))


def param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def params_line(parameters: dict[str, Any]) -> str:
    return " ".join(f"{k}={param_text(v)}" for k, v in parameters.items())


def fmt_time(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt else "-"


def proposal_json(p: ActionProposal) -> dict[str, Any]:
    return p.model_dump(mode="json")


def state_label(p: ActionProposal) -> str:
    if p.awaiting_approval:
        return "awaiting approval"
    if p.is_retry_waiting:
        return f"retry {p.retry_count}/{p.max_retries} at {fmt_time(p.next_retry_at)}"
    if p.status == ActionStatus.VALIDATED and p.scheduled_at:
        return f"scheduled {fmt_time(p.scheduled_at)}"
    if p.status == ActionStatus.CANCELLED and p.cancel_reason:
        return f"cancelled ({visible(p.cancel_reason)})"
    return p.status.value
