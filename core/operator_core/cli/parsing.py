"""Reading command-line values: durations, KEY=VALUE parameters, numbers, ids and text.

Checked here, before any database is opened or created: a refused value changes nothing.
The CLI's limits (README, "Limits") are tighter than the engine's: a command line is typed
or generated one proposal at a time, and no reason or value needs more.
"""

from __future__ import annotations

import math
import re
from typing import Any

from operator_core.actions.limits import MAX_AHEAD_DAYS, MAX_DELAY_SECONDS
from operator_core.errors import ValidationError

MAX_ID = 2**63 - 1
"""The largest id SQLite can store: a larger one is refused as a usage error."""
MAX_LIST = 100_000
"""Most rows a list command prints (--limit, audit tail -n)."""
MAX_NAME_CHARS = 200
"""Characters in a workflow's name or an --actor label."""
MAX_TEXT_CHARS = 10_000
"""Characters in a reason, a description or one parameter's value."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str, option: str = "duration") -> float:
    """'90', '90s', '5m', '1h30m', '250ms' -> seconds; at most ten years (checked here, before
    any database is opened or created)."""
    s = text.strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValidationError(
            f"cannot read duration {text!r} of {option}: use e.g. 90s, 5m, 1h30m", option
        )
    if not total <= MAX_DELAY_SECONDS:  # also inf, from a few hundred digits
        raise ValidationError(
            f"{option} {text!r} is more than {MAX_AHEAD_DAYS} days (ten years)", option
        )
    return total


def parse_params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--param {item!r} must look like KEY=VALUE", key or item)
        if key.strip() in out:
            raise ValidationError(f"parameter '{key.strip()}' given twice", key.strip())
        check_text(value, f"parameter '{key.strip()}'", key.strip())
        out[key.strip()] = value
    return out


def check_text(value: str, what: str, field: str, limit: int = MAX_TEXT_CHARS) -> None:
    if len(value) > limit:
        raise ValidationError(
            f"{what} is {len(value):,} characters long; the limit is {limit:,}", field
        )


def check_label(value: str, what: str, field: str) -> str:
    """A name or label: not blank, at most MAX_NAME_CHARS; returned stripped."""
    if not value.strip():
        raise ValidationError(f"{what} is blank: give a name", field)
    check_text(value, what, field, MAX_NAME_CHARS)
    return value.strip()


def check_number(value: float, option: str, low: float, high: float, above: bool = False) -> None:
    """Click lets nan and inf through its range checks (nan < 1 is false)."""
    if not math.isfinite(value) or value < low or (above and value == low) or value > high:
        span = f"above {low:g} and at most" if above else f"from {low:g} to"
        raise ValidationError(f"{option} must be a number {span} {high:g}, not {value}", option)
