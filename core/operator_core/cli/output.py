"""How the CLI prints: JSON, times, parameters, an action's state in one label."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from operator_core.model.states import ActionStatus
from operator_core.safe_text import json_visible, visible

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from operator_core.model.types import ActionProposal


def emit(data: Any) -> None:
    """JSON as a program reads it: non-ASCII text as itself, control and format characters
    escaped (see ``json_visible``), every time in UTC with a Z."""
    text = json.dumps(data, indent=2, default=str, sort_keys=True, ensure_ascii=False)
    typer.echo(json_visible(text))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Rows under a header: aligned columns on a terminal; tab-separated and never cut when
    piped (grep and awk see every value whole, one row per line). Every cell is escaped
    (``visible``), so a value holds no tab or newline that could add a column or a row."""
    cells = [[visible(c) for c in row] for row in rows]
    if not sys.stdout.isatty():
        typer.echo("\n".join("\t".join(row) for row in [list(columns), *cells]))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold")
    for col in columns:
        table.add_column(col)
    for row in cells:
        # Text cells: what an agent wrote is never read as Rich markup ("[/]" would crash).
        table.add_row(*(Text(c) for c in row))
    Console().print(table)


def json_line(data: Any) -> str:
    """``data`` as JSON on one line, for text output (non-ASCII as itself, as ``emit``)."""
    return json_visible(json.dumps(data, default=str, sort_keys=True, ensure_ascii=False))


def param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


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
