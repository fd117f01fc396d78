"""The ``operator`` command: a thin face over ActionExecutor.

Every error the engine raises becomes one line on stderr and a non-zero exit; nothing is
half-written because every change is one transaction. ``app`` holds the groups and global
options; each command group lives in a module of its own; ``output`` is how it prints.

``main`` first asks ``help_cache`` (a help text Typer printed before) and ``fast`` (the
reading commands, without Typer); everything else, and ``app``, import the Typer app on
first use.
"""

from __future__ import annotations

import gc
import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["app", "main"]


def _main(argv: list[str] | None = None) -> int:
    """Run the CLI; every expected error is one line on stderr. Without ``argv`` (the
    installed command, ``python -m operator_core.cli``) a read the fast path answers ends
    the process there; a caller that passes ``argv`` always gets the exit code back."""
    try:
        return _run(argv)
    except OSError as exc:
        import errno

        # The output cannot be written (``operator status > /dev/full``).
        if exc.errno not in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG):
            raise
        sys.stderr.write(f"operator: cannot write the output: {exc.strerror}\n")
        sys.stderr.flush()
        if argv is not None:
            return 1
        # What is still buffered for stdout would fail again as the interpreter ends.
        os._exit(1)


def _run(argv: list[str] | None) -> int:
    own = argv is None  # the process's own command line, not a caller's (a test's)
    if own:
        # A read answered here is a short process that makes no cycles: the collector's
        # passes over its imports cost more than the answer (docs/performance.md).
        gc.disable()
        if sys.argv[-1] == "--help":  # the reads skip the module's import
            from operator_core.cli import help_cache

            code = help_cache.serve(sys.argv[1:])
            if code is not None:
                os._exit(code)
    from operator_core.cli.fast import serve

    code = serve(sys.argv[1:] if own else argv)
    if code is not None and own:
        # Answered and flushed, its database closed: nothing is left to clean up, and
        # tearing the interpreter down would take longer than the answer did.
        os._exit(code)
    if own:
        gc.enable()  # the Typer path runs anything, a runner for days among them
    if code is not None:
        return code
    from operator_core.cli.typer_main import main as typer_main

    return typer_main(argv)


# The Typer path lives in ``typer_main``, not ``main``: a submodule named ``main`` would
# rebind this package's ``main`` to itself whenever anything imported it.
main = _main


def __getattr__(name: str) -> Any:
    if name == "app":
        from operator_core.cli.typer_main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
