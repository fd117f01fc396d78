"""What the environment says: flags such as ``OPERATOR_APPROVAL_MODE``, and who is acting."""

from __future__ import annotations

import getpass
import math
import os
import socket

_TRUE = ("1", "true", "yes", "on")


def default_actor() -> str:
    """``user@host``, the actor the CLI and dashboard record."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in _TRUE


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
    from operator_core.errors import ConfigError
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
