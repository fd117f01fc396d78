"""Operator dashboard (Textual)."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from operator_tui.app import OperatorApp


def load_app() -> type[OperatorApp]:
    """The dashboard's App class, imported with the garbage collector paused.

    The import builds many objects that live as long as the process (Textual, Rich,
    pydantic, their classes and schemas); the collector would scan them again and again
    while they are made. Once imported, they are frozen out of its sight, so the collections
    that follow scan only what is new; ``OperatorApp.run`` pauses it again until the first
    frame is drawn.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        from operator_tui.app import OperatorApp
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
    return OperatorApp
