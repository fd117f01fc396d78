"""The entry point: every expected error is one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys

import typer
from typer.exceptions import Abort, Exit, TyperException

from operator_core.cli.app import app
from operator_core.errors import ConfigError, OperatorError, ValidationError
from operator_core.safe_text import has_surrogates, visible

# isort: off
# Each module adds its commands to ``app`` as it is imported: ``operator --help`` lists
# them in this order.
from operator_core.cli import (
    proposing,
    decisions,
    reading,
    audit,
    policy,
    running,
    tickets,
    automations,
    executions,
    agents,
    agent_budgets,
    migrate,
    copying,
)

# isort: on

COMMAND_MODULES = (
    proposing,
    decisions,
    reading,
    audit,
    policy,
    running,
    tickets,
    automations,
    executions,
    agents,
    agent_budgets,
    migrate,
    copying,
)


def _check_utf8(argv: list[str]) -> None:
    """Refuse arguments and OPERATOR_* settings that are not UTF-8: Python keeps such bytes
    as lone surrogates, which SQLite and JSON cannot store and a terminal cannot print."""
    for i, arg in enumerate(argv):
        if has_surrogates(arg):
            option, eq, value = arg.partition("=")
            if eq and option.startswith("--"):
                what = option
            elif i > 0 and argv[i - 1].startswith("-") and not arg.startswith("-"):
                what, value = argv[i - 1], arg
            else:
                what, value = f"argument {i + 1}", arg
            raise ValidationError(
                f"{visible(what)} is not valid UTF-8 text: '{visible(value)}'", what
            )
    for name, value in os.environ.items():
        if name.startswith("OPERATOR_") and has_surrogates(value):
            raise ConfigError(f"{visible(name)} is not valid UTF-8 text: '{visible(value)}'")


PREFIX = "operator: "
"""Every line the CLI writes about an error starts with it, as the README shows."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every expected error is one line on stderr. The process's own help
    request (``argv`` None) is kept for ``help_cache`` to answer next time."""
    from operator_core.cli import help_cache

    if argv is None and sys.stdout is not None and help_cache.request(sys.argv[1:]):
        capture = help_cache.Capture(sys.stdout)
        sys.stdout = capture
        try:
            code = _run(argv)
        finally:
            sys.stdout = capture._stream
        if code == 0:
            help_cache.remember(sys.argv[1:], capture)
        return code
    return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        _check_utf8(sys.argv[1:] if argv is None else argv)
        # Outside standalone mode, click returns the code of a typer.Exit rather than raise.
        code = app(args=argv, prog_name="operator", standalone_mode=False)
    except OperatorError as exc:
        typer.echo(f"{PREFIX}{visible(exc)}", err=True)
        return 1
    except Abort:
        typer.echo(f"{PREFIX}aborted", err=True)
        return 130
    except TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            # A group without its command (``operator audit``): its usage, once, on stderr.
            typer.echo(exc.format_message().rstrip("\n"), err=True)
            return 2
        typer.echo(f"{PREFIX}{visible(exc.format_message())}", err=True)
        return exc.exit_code or 2
    except Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 0
