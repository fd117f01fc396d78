"""The CLI's fast path: the reading commands agents and scripts call once per proposal,
served with the standard library, ``_sqlite3`` and the light read modules (``db.snapshot``,
``db.lookups``), without importing Typer, pydantic, aiosqlite, asyncio, typing or json.
This module reads the arguments (with ``os`` and ``sys`` only, which is all ``--version``
needs); ``fast_read`` answers a vector it serves.

``serve`` recognises exactly the argument vectors below and answers them as the Typer
commands in ``reading.py`` do, byte for byte (tests/cli/test_fast_path.py runs both on a
matrix of inputs). Anything else returns None before printing anything, and the Typer app
runs as if this module did not exist: every option it does not know, every value it would
refuse, a terminal (Rich draws the tables), any setting of the environment beyond
OPERATOR_DB / OPERATOR_SUBJECT / OPERATOR_ACTOR, and any database it cannot read as the
full path would (missing, foreign, older or newer schema, locked, corrupt).

    operator [--db PATH] [--subject SPEC] status [--json]
    operator [...] actions list [--status S] [--limit N] [--json]   (piped)
    operator [...] workflows list [--limit N] [--json]              (piped)
    operator [...] workflows show ID [--json]
    operator [...] audit tail [-n N | --lines N] [--json]
    operator [...] actions show ID [--json]
    operator [...] automations list [--json]                        (piped)
    operator [...] automations executions [--automation NAME] [--status S] [--limit N]
                                          [--json]                  (piped)
    operator --version

``--help`` stays with Typer, whose text ``help_cache`` prints again when nothing it
depends on changed.
"""

from __future__ import annotations

import os
import sys

MAX_ID = 2**63 - 1  # as cli/parsing.py (a test holds them equal): that module imports more
MAX_LIST = 100_000
EXECUTIONS_MAX = 1000  # ``automations executions --limit``'s bounds are 1 to this
ENV_KNOWN = ("OPERATOR_DB", "OPERATOR_SUBJECT", "OPERATOR_ACTOR", "OPERATOR_AUDIT_", "OPERATOR_PG_")
"""The settings (or prefixes) a reading command's answer depends on no further than this
module reads them (the audit checkpoint settings: only a write starts the publisher; the
PostgreSQL ones: a URL goes to Typer anyway)."""
# (command words, options that take a value, flags); a value option maps to its key.
COMMANDS: dict[tuple[str, ...], tuple[dict[str, str], tuple[str, ...]]] = {
    ("status",): ({}, ("--json",)),
    ("actions", "list"): ({"--status": "status", "--limit": "limit"}, ("--json",)),
    ("workflows", "list"): ({"--limit": "limit"}, ("--json",)),
    ("workflows", "show"): ({}, ("--json",)),
    ("audit", "tail"): ({"-n": "lines", "--lines": "lines"}, ("--json",)),
    ("actions", "show"): ({}, ("--json",)),
    ("automations", "list"): ({}, ("--json",)),
    ("automations", "executions"): (
        {"--automation": "automation", "--status": "status", "--limit": "limit"},
        ("--json",),
    ),
}
WITH_ID = (("workflows", "show"), ("actions", "show"))
"""The commands that take one id (and only they)."""
TABLES = (("actions", "list"), ("workflows", "list"), ("automations", "list"))
TABLES += (("automations", "executions"),)
"""The commands that print a table: on a terminal Rich draws it, so they are served piped."""


def _number(text: str, high: int) -> int | None:
    """A value click reads as the same int within [1, high]; None for anything else."""
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 1 <= value <= high else None


def _options(
    words: list[str], with_value: dict[str, str], flags: tuple[str, ...]
) -> dict[str, str] | None:
    """Options and positional words, each given at most once, or None."""
    out: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if word in flags:
            key, value = word, ""
        elif name in with_value and name.startswith("--") and eq:
            key = with_value[name]
        elif word in with_value and i + 1 < len(words):
            key, value = with_value[word], words[i + 1]
            i += 1
        elif not word.startswith("-") and "arg" not in out:
            key, value = "arg", word
        else:
            return None
        if key in out or not value and key not in flags or value.startswith("-"):
            return None
        out[key] = value
        i += 1
    return out


def parse(argv: list[str]) -> tuple[dict[str, str], tuple[str, ...], dict[str, str]] | None:
    """(global options, command, its options) of a vector served here, else None."""
    glob: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        name, eq, value = argv[i].partition("=")
        if name not in ("--db", "--subject") or name in glob:
            return None
        if not eq:
            if i + 1 >= len(argv):
                return None
            i += 1
            value = argv[i]
        if not value.strip() or value.startswith("-"):
            return None
        glob[name] = value
        i += 1
    for command, (with_value, flags) in COMMANDS.items():
        if tuple(argv[i : i + len(command)]) == command:
            opts = _options(argv[i + len(command) :], with_value, flags)
            break
    else:
        return None
    if opts is None or ("arg" in opts) != (command in WITH_ID):
        return None
    return glob, command, opts


def posix_path(text: str) -> str:
    """``str(pathlib.Path(text))`` without pathlib (a test holds them equal): empty and
    ``.`` parts dropped, a leading ``//`` (exactly two) kept, as POSIX paths are written."""
    if not text:
        return "."
    root = "/" if text.startswith("/") else ""
    if text.startswith("//") and not text.startswith("///"):
        root = "//"
    parts = [p for p in text.split("/") if p and p != "."]
    return root + "/".join(parts) if root or parts else "."


def db_path(given: str | None) -> str | None:
    """The database ``Config`` would open (as ``str(cfg.db)``), if this path serves it; a
    ``~`` is left to the Typer path (``Path.expanduser``)."""
    env = os.environ.get("OPERATOR_DB") or None
    given = given if given is not None else env
    if given is not None and (not given.strip() or given.startswith("~") or "://" in given):
        return None  # a ``~`` is Path.expanduser's, a URL (PostgreSQL) the Typer path's
    if given is None:
        base = os.environ.get("XDG_STATE_HOME") or ""
        if not base:
            home = os.path.expanduser("~")
            if home.startswith("~"):
                return None
            base = home + "/.local/state"
        given = base + "/operator/operator.db"
    return posix_path(given)


def served_here(argv: list[str]) -> bool:
    """What this process can answer as the Typer app would: text it can print as is."""
    if any(k.startswith("OPERATOR_") and not k.startswith(ENV_KNOWN) for k in os.environ):
        return False
    texts = [*argv, *(k + v for k, v in os.environ.items() if k.startswith("OPERATOR_"))]
    if any("\udc80" <= c <= "\udcff" or "\ud800" <= c <= "\udfff" for t in texts for c in t):
        return False
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    return encoding == "utf8"


def _checked(command: tuple[str, ...], opts: dict[str, str]) -> bool:
    """Every value is one the Typer command accepts as it is."""
    executions = command == ("automations", "executions")
    high = EXECUTIONS_MAX if executions else MAX_LIST
    if "limit" in opts and _number(opts["limit"], high) is None:
        return False
    if "lines" in opts and _number(opts["lines"], MAX_LIST) is None:
        return False
    if "arg" in opts and _number(opts["arg"], MAX_ID) is None:
        return False
    return command not in TABLES or not sys.stdout.isatty()


def answer(argv: list[str]) -> str | None:
    """The text the Typer app would print for ``argv`` (without its last newline), or None
    where this module does not serve it."""
    parsed = parse(argv)
    if parsed is None or not served_here(argv):
        return None
    glob, command, opts = parsed
    if not _checked(command, opts):
        return None
    path = db_path(glob.get("--db"))
    if path is None:
        return None
    from operator_core.cli.fast_read import read

    return read(path, glob, command, opts)


DIST = "operator_ops"
"""The distribution's name as its ``.dist-info`` directory writes it."""


def version() -> str | None:
    """``importlib.metadata.version("operator-ops")`` without importing it (about 20 ms of
    email and zipfile parsing): the Version line of the first ``.dist-info`` of the name on
    ``sys.path``, as it searches; None where anything differs from that simple case."""
    for entry in sys.path:
        try:
            names = [n for n in os.listdir(entry or ".") if n.lower().startswith(DIST + "-")]
        except OSError:
            continue
        if not names:
            continue
        if len(names) != 1 or not names[0].endswith(".dist-info"):
            return None
        try:
            with open(os.path.join(entry or ".", names[0], "METADATA"), encoding="utf-8") as f:
                for line in f:
                    if line.startswith("Version: "):
                        return line[len("Version: ") :].strip()
                    if not line.strip():
                        return None
        except OSError:
            return None
        return None
    return None


def serve(argv: list[str]) -> int | None:
    """Answer ``argv`` here and return the exit code, or None: run the Typer app."""
    if argv == ["--version"]:
        found = version()
        if found is None or not served_here(argv):
            return None
        sys.stdout.write(f"operator {found}\n")
        sys.stdout.flush()
        return 0
    text = answer(argv)
    if text is None:
        return None
    sys.stdout.write(text + "\n" if text else "")  # an empty audit log prints nothing
    sys.stdout.flush()
    return 0
