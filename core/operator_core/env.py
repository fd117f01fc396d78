"""What the environment says: on/off settings such as ``OPERATOR_READ_ONLY``.

Every on/off setting reads the same words, and anything else is an error: a safety setting
mistyped must never quietly mean off. Who is acting comes from ``operator_core.identity``.
"""

from __future__ import annotations

import math
import os

from operator_core.errors import ConfigError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
BOOL_HELP = "use one of " + ", ".join(TRUE_WORDS) + " or " + ", ".join(FALSE_WORDS)


def parse_bool(value: str, name: str) -> bool:
    """An on/off word (case ignored, surrounding spaces ignored); ConfigError naming
    ``name`` for anything else."""
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be on or off, not {value!r} ({BOOL_HELP})")


def env_bool(name: str) -> bool | None:
    """The on/off setting ``name`` of the environment; None when it is unset or empty."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return parse_bool(value, name)


def env_flag(name: str, default: bool = False) -> bool:
    """``env_bool`` with a default for an unset variable."""
    value = env_bool(name)
    return default if value is None else value


def default_actor() -> str:
    """``user@host`` of the user running this process (see ``operator_core.identity``)."""
    from operator_core.identity import current_identity

    return current_identity().text


def env_number(
    name: str,
    default: float,
    *,
    low: float,
    high: float,
    low_open: bool = False,
    unit: str = "",
) -> float:
    """A numeric setting: unset or empty means ``default``; anything that is not a finite
    number within [low, high] (``(low, high]`` with ``low_open``) is a ConfigError naming
    the variable and what it accepts, never a traceback nor a silent default."""
    from operator_core.safe_text import visible

    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    below = value <= low if low_open else value < low
    if not math.isfinite(value) or below or value > high:
        span = f"above {low:g} and at most {high:g}" if low_open else f"from {low:g} to {high:g}"
        raise ConfigError(f"{name} must be a number {span}{unit}, not '{visible(raw)}'")
    return value
