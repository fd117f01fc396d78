"""How the CLI prints: JSON, times, parameters, an action's state in one label."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from operator_core.cli.formats import (  # re-exported: the commands import them from here
    by_state,
    fmt_time,
    json_line,
    json_text,
    json_time,
    param_text,
    params_line,
    state_label,
    table_text,
)
from operator_core.safe_text import visible

__all__ = [
    "by_state",
    "emit",
    "fmt_time",
    "json_line",
    "json_text",
    "json_time",
    "param_text",
    "params_line",
    "print_table",
    "proposal_json",
    "state_label",
]

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from operator_core.model.types import ActionProposal


def emit(data: Any) -> None:
    """JSON as a program reads it (``json_text``)."""
    typer.echo(json_text(data))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Rows under a header: aligned columns on a terminal; tab-separated and never cut when
    piped (grep and awk see every value whole, one row per line). Every cell is escaped
    (``visible``), so a value holds no tab or newline that could add a column or a row."""
    if not sys.stdout.isatty():
        typer.echo(table_text(columns, rows))
        return
    cells = [[visible(c) for c in row] for row in rows]
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


def proposal_json(p: ActionProposal) -> dict[str, Any]:
    return p.model_dump(mode="json")
