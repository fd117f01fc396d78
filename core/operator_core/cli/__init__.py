"""The ``operator`` command: a thin face over ActionExecutor.

Every error the engine raises becomes one line on stderr and a non-zero exit; nothing is
half-written because every change is one transaction. ``app`` holds the groups and global
options; each command group lives in a module of its own; ``output`` is how it prints.
"""

from operator_core.cli.main import app, main

__all__ = ["app", "main"]
