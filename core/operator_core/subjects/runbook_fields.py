"""Reading one value of a runbook file, with errors that name the file, action and field.

Shared by the runbook parser and the parsers of its declared API actions (Jira, Linear,
OAuth2), so every mistake reads the same way.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from operator_core.actions.definitions import MAX_BUDGET_RUNS, ExecutionBudget, parse_window
from operator_core.errors import ConfigError
from operator_core.subjects.templates import Template, TemplateError, parse

# Upper bound of the seconds a runbook gives: 30 days is already no limit in practice, and
# larger values overflow the engine's date arithmetic.
MAX_SECONDS = 30 * 86400.0


class FieldCtx:
    """Where a value sits in the file, for error messages."""

    def __init__(self, path: Path, action: str | None = None) -> None:
        self.path, self.action = path, action

    def error(self, field: str | None, problem: str) -> ConfigError:
        where = [str(self.path)]
        if self.action is not None:
            where.append(f"action '{self.action}'")
        if field:
            where.append(f"field '{field}'")
        return ConfigError(f"{': '.join(where)}: {problem}")

    def keys(self, table: dict[str, Any], allowed: set[str], field: str | None) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            name = f"{field}.{unknown[0]}" if field else unknown[0]
            raise self.error(name, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def table(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(field, f"must be a table, not {kind_of(value)}")
        return value

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise self.error(field, f"must be a string, not {kind_of(value)}")
        return value

    def number(
        self, value: Any, field: str, *, positive: bool = True, most: float = MAX_SECONDS
    ) -> float:
        """Seconds: finite (TOML allows nan and inf, which would mean "never time out"),
        positive (or zero if not ``positive``) and at most ``most``."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(field, f"must be a number of seconds, not {kind_of(value)}")
        least = "positive" if positive else "zero or more"
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise self.error(field, f"must be a {least} number of seconds, not {value}")
        if value > most:
            raise self.error(field, f"must be at most {most:g} seconds, not {value:g}")
        return float(value)

    def template(self, value: Any, field: str, params: list[str]) -> Template:
        try:
            return parse(self.string(value, field), params)
        except TemplateError as exc:
            raise self.error(field, str(exc)) from None

    def text(self, value: Any, field: str, params: list[str]) -> Template:
        """A template that always renders to a string (``"{count}"`` alone would keep the
        parameter's type in a JSON body)."""
        template = self.template(value, field, params)
        if template.single_ref is None:
            return template
        return Template(template.source, ("", *template.parts))

    def url(self, value: Any, field: str, params: list[str]) -> Template:
        """A URL template whose scheme and host are fixed by the file (or a secret), so a
        parameter cannot choose where the request goes."""
        url = self.template(value, field, params)
        first = url.parts[0] if url.parts else ""
        if isinstance(first, str):
            if not first.lower().startswith(("http://", "https://")):
                raise self.error(field, "must start with http:// or https:// (or a {secret:...})")
        elif first.kind != "secret":
            raise self.error(
                field,
                "must start with http://, https:// or a {secret:...}, so a "
                "parameter cannot choose where the request goes",
            )
        return url

    def fixed(self, value: Any, field: str) -> Template:
        """A template of literals and secrets only: credentials and token endpoints are
        the file's, never a parameter's or a ticket's."""
        template = self.template(value, field, [])
        if any(r.kind == "ticket" for r in template.refs):
            raise self.error(field, "may hold only text and {secret:...}, not ticket fields")
        return template


def budget(ctx: FieldCtx, raw: Any) -> ExecutionBudget:
    """``budget = { runs = 3, per = "1h" }``: at most ``runs`` executions started in any
    window of ``per``, across every runner."""
    table = ctx.table(raw, "budget")
    ctx.keys(table, {"runs", "per"}, "budget")
    for key in ("runs", "per"):
        if key not in table:
            raise ctx.error(f"budget.{key}", 'missing: write budget = { runs = 3, per = "1h" }')
    runs = table["runs"]
    if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= MAX_BUDGET_RUNS:
        raise ctx.error(
            "budget.runs", f"must be an integer from 1 to {MAX_BUDGET_RUNS:,}, not {runs!r}"
        )
    try:
        per = parse_window(ctx.string(table["per"], "budget.per"))
    except ValueError as exc:
        raise ctx.error("budget.per", str(exc)) from None
    return ExecutionBudget(runs=runs, per_seconds=per)


def kind_of(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)
