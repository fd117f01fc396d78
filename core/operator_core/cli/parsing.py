"""Reading command-line values: durations, KEY=VALUE parameters, numbers."""

from __future__ import annotations

import math
import re
from typing import Any

from operator_core.actions.limits import MAX_AHEAD_DAYS, MAX_DELAY_SECONDS
from operator_core.errors import ValidationError

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
        out[key.strip()] = value
    return out


def check_number(value: float, option: str, low: float, high: float, above: bool = False) -> None:
    """Click lets nan and inf through its range checks (nan < 1 is false)."""
    if not math.isfinite(value) or value < low or (above and value == low) or value > high:
        span = f"above {low:g} and at most" if above else f"from {low:g} to"
        raise ValidationError(f"{option} must be a number {span} {high:g}, not {value}", option)
