"""What an action is: its typed parameters, risk and limits, and how a value is checked."""

from __future__ import annotations

import math
import os
import posixpath
import re
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from operator_core.clock import span
from operator_core.errors import ValidationError
from operator_core.safe_text import has_surrogates, shown


class RiskLevel(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# The longest time limit or backoff an action may declare (31 days).
MAX_SECONDS = 31 * 86400.0

PARAM_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "path": str}
_TYPE_ALIASES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "enum": "str",
}


class ParamDef(BaseModel):
    """One typed parameter of an action."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    type: str = Field(default="str", description="str, int, float, bool or path")
    description: str = Field(default="", description="What the parameter means")
    required: bool = Field(default=True, description="Must be given (unless it has a default)")
    default: Any = Field(default=None, description="Value used when omitted")
    choices: tuple[Any, ...] | None = Field(default=None, description="Allowed values")
    pattern: str | None = Field(default=None, description="Regex a string value must match")
    under: str | None = Field(
        default=None, description="path only: the directory the path must stay inside"
    )

    def model_post_init(self, __context: Any) -> None:
        canonical = _TYPE_ALIASES.get(self.type, self.type)
        if canonical not in PARAM_TYPES:
            raise ValueError(
                f"unknown parameter type {self.type!r} (use str, int, float, bool, path)"
            )
        object.__setattr__(self, "type", canonical)
        if self.pattern is not None:
            re.compile(self.pattern)
        if self.under is not None:
            if canonical != "path":
                raise ValueError("only a path parameter can have 'under'")
            object.__setattr__(self, "under", normalise_path(self.under, "under"))


def normalise_path(value: str, name: str) -> str:
    """A path parameter's value: absolute, with '.', '..' and repeated slashes resolved in
    the text alone (no file is looked at). This is what the program is given."""
    if "\0" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError(f"parameter '{name}' must not contain control characters", name)
    if not value.startswith("/"):
        raise ValidationError(f"parameter '{name}' must be an absolute path, got {value!r}", name)
    return "/" + posixpath.normpath(value).lstrip("/")


def _inside(path: str, directory: str) -> bool:
    return directory == "/" or path == directory or path.startswith(directory + "/")


def _check_path(name: str, spec: ParamDef, value: str) -> str:
    path = normalise_path(value, name)
    if spec.under is not None and not _inside(path, spec.under):
        shown = "" if path == value else f" (it is {path} once '..' is resolved)"
        raise ValidationError(
            f"parameter '{name}' must be a path under {spec.under}, got {value!r}{shown}", name
        )
    return path


def confine_paths(definition: ActionDefinition, params: dict[str, Any]) -> None:
    """At execution, just before the paths are used: every path parameter with ``under``,
    its symbolic links followed, must still lead inside ``under`` (a link under /var/log
    may point to /etc/shadow). Raises ValidationError. A link swapped between this check
    and the program opening the file is not caught: see the README."""
    for name, spec in definition.parameters.items():
        value = params.get(name)
        if spec.type != "path" or spec.under is None or not isinstance(value, str):
            continue
        real, base = os.path.realpath(value), os.path.realpath(spec.under)
        if not _inside(real, base):
            raise ValidationError(
                f"parameter '{name}': {value} leads to {real}, outside {spec.under} "
                "(through a symbolic link)",
                name,
            )


# The most executions a budget may allow per window.
MAX_BUDGET_RUNS = 1_000_000


class ExecutionBudget(BaseModel):
    """At most ``runs`` executions started in any window of ``per_seconds``, counted over
    every runner sharing the database (each attempt, a retry too, is one execution)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    runs: int = Field(..., ge=1, le=MAX_BUDGET_RUNS, description="Executions per window")
    per_seconds: float = Field(
        ..., gt=0, le=MAX_SECONDS, allow_inf_nan=False, description="The window's length"
    )

    def describe(self) -> str:
        """``3 per 1h``, as the dashboard and the CLI say it."""
        return f"{self.runs} per {span(self.per_seconds)}"


_WINDOW_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_WINDOW_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_window(text: str) -> float:
    """A budget's window: ``"1h"``, ``"10m"``, ``"90s"`` (or ``90``), ``"1h30m"`` ->
    seconds, more than zero and at most 31 days. Raises ValueError with one line."""
    spec = text.strip().lower()
    total, pos = 0.0, 0
    while pos < len(spec):
        m = _WINDOW_PART.match(spec, pos)
        if m is None:
            raise ValueError(f"cannot read {text!r} as a window: write e.g. 90s, 10m, 1h or 1d")
        total += float(m.group(1)) * _WINDOW_UNIT[m.group(2)]
        pos = m.end()
    if not spec:
        raise ValueError("a window cannot be empty: write e.g. 90s, 10m, 1h or 1d")
    if total <= 0:
        raise ValueError(f"a window must be longer than zero, not {text!r}")
    if total > MAX_SECONDS:
        raise ValueError(f"a window can be at most {span(MAX_SECONDS)}, not {text!r}")
    return total


class ActionDefinition(BaseModel):
    """An action a subject can perform."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str = Field(..., description="Action name, e.g. transfer_leader")
    description: str = Field(default="", description="What it does")
    parameters: dict[str, ParamDef] = Field(default_factory=dict, description="Typed parameters")
    risk_level: RiskLevel = Field(default=RiskLevel.MEDIUM, description="low, medium or high")
    requires_approval: bool = Field(
        default=False, description="Always needs a human approval, even with approval mode off"
    )
    # Finite and bounded: nan or inf would mean "no time limit", and a limit past
    # MAX_SECONDS overflows the runner's date arithmetic.
    timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=MAX_SECONDS,
        allow_inf_nan=False,
        description="Per-attempt time limit",
    )
    max_retries: int | None = Field(default=None, ge=0, description="Overrides the engine default")
    retry_min_wait_seconds: float | None = Field(
        default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False, description="Backoff override"
    )
    retry_max_wait_seconds: float | None = Field(
        default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False, description="Backoff override"
    )
    budget: ExecutionBudget | None = Field(
        default=None, description="At most this many executions in any window (all runners)"
    )


def _coerce(name: str, spec: ParamDef, value: Any) -> Any:
    """Strings from the command line become the declared type; other mismatches are errors."""
    expected = PARAM_TYPES[spec.type]
    if spec.type == "path":
        if not isinstance(value, str):
            raise ValidationError(f"parameter '{name}' must be a path, got {value!r}", name)
        return _check_path(name, spec, value)
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise ValidationError(f"parameter '{name}' must be a boolean, got {shown(value)}", name)
    if spec.type == "int":
        if isinstance(value, bool):
            raise ValidationError(
                f"parameter '{name}' must be an integer, got {shown(value)}", name
            )
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValidationError(f"parameter '{name}' must be an integer, got {shown(value)}", name)
    if spec.type == "float":
        number: float | None = None
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number = float(value)
            elif isinstance(value, str):
                number = float(value.strip())
        except (ValueError, OverflowError):
            pass
        # nan and inf are no quantity an action can act on (and not JSON either).
        if number is not None and math.isfinite(number):
            return number
        raise ValidationError(
            f"parameter '{name}' must be a finite number, got {shown(value)}", name
        )
    if not isinstance(value, expected):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValidationError(f"parameter '{name}' must be a string, got {shown(value)}", name)
    if has_surrogates(value):
        raise ValidationError(f"parameter '{name}' is not valid Unicode text: {shown(value)}", name)
    return value


def validate_action_params(definition: ActionDefinition, params: dict[str, Any]) -> dict[str, Any]:
    """Check ``params`` against the definition; return them typed and with defaults filled.

    Raises ValidationError naming the parameter and what was wrong.
    """
    if not isinstance(params, dict):
        raise ValidationError(f"parameters of '{definition.name}' must be a mapping")
    if not all(isinstance(k, str) for k in params):
        raise ValidationError(
            f"parameter names of '{definition.name}' must be strings", "parameters"
        )
    unknown = sorted(set(params) - set(definition.parameters))
    if unknown:
        allowed = ", ".join(definition.parameters) or "none"
        raise ValidationError(
            f"unknown parameter '{unknown[0]}' for action '{definition.name}' "
            f"(parameters: {allowed})",
            unknown[0],
        )
    out: dict[str, Any] = {}
    for name, spec in definition.parameters.items():
        if name not in params or params[name] is None:
            if spec.default is not None:
                out[name] = spec.default
            elif spec.required:
                raise ValidationError(
                    f"missing required parameter '{name}' ({spec.type}) for action "
                    f"'{definition.name}'",
                    name,
                )
            continue
        value = _coerce(name, spec, params[name])
        if spec.choices is not None and value not in spec.choices:
            options = ", ".join(str(c) for c in spec.choices)
            raise ValidationError(
                f"parameter '{name}' must be one of {options}; got {shown(value)}", name
            )
        if (
            spec.pattern is not None
            and isinstance(value, str)
            and re.fullmatch(spec.pattern, value) is None
        ):
            raise ValidationError(
                f"parameter '{name}' value {shown(value)} does not match pattern {spec.pattern}",
                name,
            )
        out[name] = value
    return out
