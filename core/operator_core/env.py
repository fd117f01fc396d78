"""What the environment says: flags such as ``OPERATOR_APPROVAL_MODE``, and who is acting."""

from __future__ import annotations

import getpass
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
