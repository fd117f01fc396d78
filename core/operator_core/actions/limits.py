"""What a proposal may ask for: times, retries and values every process can store and the
runner can compute with. A proposal outside these bounds is refused with one ValidationError
naming the field, so no stored action can stop a runner that reaches it (issue 20).

Only the standard library is imported here: the CLI checks durations with it before it
opens (or creates) a database.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from operator_core.clock import to_utc
from operator_core.errors import ValidationError

MAX_AHEAD_DAYS = 3653
"""Ten years: the furthest a schedule, an expiry, a workflow step's delay or a retry wait may
reach. Far beyond any real follow-up, far inside what a datetime can hold."""
MAX_DELAY_SECONDS = float(MAX_AHEAD_DAYS * 86400)
MAX_AHEAD = timedelta(days=MAX_AHEAD_DAYS)

MAX_RETRIES = 1000
"""Retries one action may be given after its first attempt."""

MAX_TEXT_CHARS = 100_000
"""Characters in a reason, a name, a description or one string parameter."""

_INT64 = 2**63


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def delay_seconds(value: object, what: str, field: str) -> float:
    """A delay given in seconds: a finite number from 0 up to ten years."""
    if not _is_number(value):
        raise ValidationError(f"{what} must be a number of seconds, got {value!r}", field)
    assert isinstance(value, int | float)
    # An int too large for a float is compared as an int (math.isfinite would overflow).
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{what} must be a number of seconds, got {value!r}", field)
    if value < 0:
        raise ValidationError(f"{what} cannot be negative", field)
    if value > MAX_DELAY_SECONDS:
        raise ValidationError(
            f"{what} cannot be more than {MAX_AHEAD_DAYS} days (ten years)", field
        )
    return float(value)


def time_ahead(value: datetime, now: datetime, what: str, field: str) -> datetime:
    """A time given as a datetime, in UTC, no more than ten years after ``now`` (an earlier
    time is allowed: it is due, or expired, at once)."""
    try:
        at = to_utc(value)
    except (OverflowError, ValueError):
        raise ValidationError(f"{what} {value!r} cannot be represented in UTC", field) from None
    if at - now > MAX_AHEAD:
        raise ValidationError(
            f"{what} cannot be more than {MAX_AHEAD_DAYS} days (ten years) from now", field
        )
    return at


def retries(value: object, field: str = "max_retries") -> int:
    """A retry limit: a whole number from 0 up to MAX_RETRIES."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{field} must be a whole number, got {value!r}", field)
    if value < 0:
        raise ValidationError(f"{field} cannot be negative", field)
    if value > MAX_RETRIES:
        raise ValidationError(f"{field} cannot be more than {MAX_RETRIES}", field)
    return value


def text(value: object, what: str, field: str) -> str:
    """A string SQLite can store (UTF-8: no lone surrogates) of at most MAX_TEXT_CHARS."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {value!r}", field)
    if len(value) > MAX_TEXT_CHARS:
        raise ValidationError(f"{what} is longer than {MAX_TEXT_CHARS} characters", field)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"{what} is not valid text (it holds a lone surrogate, "
                "e.g. from undecodable bytes)",
                field,
            ) from None
    return value


def parameter_values(params: dict[str, Any]) -> None:
    """Each validated parameter value can be stored, read back and handed to a command:
    strings are text, whole numbers fit in 64 bits, numbers are finite."""
    for name, value in params.items():
        kind = type(value)
        if kind is str:
            text(value, f"parameter '{name}'", name)
        elif kind is int:
            if not -_INT64 <= value < _INT64:
                raise ValidationError(f"parameter '{name}' does not fit in 64 bits", name)
        elif kind is float and not math.isfinite(value):
            raise ValidationError(
                f"parameter '{name}' must be a finite number, got {value!r}", name
            )
