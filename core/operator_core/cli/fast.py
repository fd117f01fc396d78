"""The CLI's fast path: the reading commands agents and scripts call once per proposal,
served with the standard library, sqlite3 and the light read modules (``db.snapshot``,
``db.lookups``), without importing Typer, pydantic, aiosqlite or asyncio.

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

``--help`` stays with Typer: its text would have to be generated from the Typer app and kept
in step with every command added.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any

from operator_core.cli.formats import (
    ACTION_COLUMNS,
    WORKFLOW_COLUMNS,
    action_row,
    by_state,
    fmt_time,
    json_line,
    json_text,
    json_time,
    params_line,
    state_label,
    table_text,
    workflow_row,
)
from operator_core.clock import SYSTEM_CLOCK, from_db
from operator_core.db import health, inuse, lookups
from operator_core.db.rows import WORKFLOW_SQL, row_to_workflow
from operator_core.db.schema import LATEST_VERSION
from operator_core.db.snapshot import Snapshot
from operator_core.model.states import ActionStatus
from operator_core.safe_text import visible

MAX_ID = 2**63 - 1  # as cli/parsing.py (a test holds them equal): that module imports more
MAX_LIST = 100_000
EXECUTIONS_MAX = 1000  # ``automations executions --limit``'s bounds are 1 to this
ENV_KNOWN = ("OPERATOR_DB", "OPERATOR_SUBJECT", "OPERATOR_ACTOR", "OPERATOR_AUDIT_", "OPERATOR_PG_")
"""The settings (or prefixes) a reading command's answer depends on no further than this
module reads them (the audit checkpoint settings: only a write starts the publisher; the
PostgreSQL ones: a URL goes to Typer anyway)."""
BLOCKS = " ▁▂▃▄▅▆▇█"
"""The bars of ``sparklines`` (a test holds ``spark`` to the library's own output)."""

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


class _KillFile:
    """``db.killfile.KillFile``'s questions, that module (and pathlib) imported only when
    the file is there."""

    def __init__(self, db: str) -> None:
        self.name = db + ".kill"  # kill_file_path() of the path as Path writes it
        self.db = db

    def engaged(self) -> bool:
        return os.access(self.name, os.F_OK)

    def read(self) -> Any:
        from pathlib import Path

        from operator_core.db.killfile import KillFile

        return KillFile(Path(self.db)).read()


class _Connection(sqlite3.Connection):
    """Knows its kill file, as ``db.connection.Connection`` does (``read_mode`` asks it)."""

    kill_file: _KillFile | None = None


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


def _open(path: str) -> _Connection | None:
    """The database as ``Store.open(read_only=True)`` opens it, or None where that would
    refuse (the Typer path then says why)."""
    if not os.path.isfile(path):
        return None
    try:
        conn = sqlite3.connect(path, timeout=0, isolation_level=None, factory=_Connection)
    except sqlite3.Error:
        return None
    try:
        conn.row_factory = sqlite3.Row
        conn.kill_file = _KillFile(path)
        conn.execute("PRAGMA busy_timeout = 5000")
        health.check_is_operator(conn, path)
        health.check_is_current(conn, path, LATEST_VERSION, True)
    except Exception:  # whatever it is, the Typer path says it as it would
        conn.close()
        return None
    return conn


def model_json(view: Any) -> dict[str, Any]:
    """A view's values as its model's ``model_dump(mode="json")``."""
    out = {}
    for key, value in view.__dict__.items():
        if value is None or isinstance(value, bool | int | float | dict | list):
            out[key] = value
        elif hasattr(value, "_value_"):
            out[key] = value.value
        elif hasattr(value, "isoformat"):
            text = value.isoformat()
            out[key] = text[:-6] + "Z" if text.endswith("+00:00") else text
        else:
            out[key] = value
    return out


def spark(values: list[int], peak: int) -> str:
    """``sparklines(values, minimum=0, maximum=peak)[0]`` for counts and a peak >= 1."""
    out = []
    for x in values:
        scaled = ((8 - 1.0) * (max(min(x, peak), 0) - 0)) / (peak - 0) + 1.0
        out.append(BLOCKS[int(round(scaled) or 1)])
    return "".join(out)


# The last slot a spent budget waits for (budget_waits' rows are one per action).
LAST_SLOT_SQL = "SELECT MAX(next_slot_at) FROM budget_waits"


def status(snap: Snapshot, path: str, as_json: bool) -> str | None:
    conn = snap._conn
    if budget_spent(snap):
        return None
    mode, at, by, reason = snap.get_safety_mode()
    policy = lookups.read_policy(conn)
    counts = snap.counts()
    done, failed = snap.activity(60)
    kill = _KillFile(path)
    data = {
        "db": path,
        "safety_mode": mode,
        "mode_changed_by": by,
        "mode_changed_at": json_time(at),
        "mode_reason": reason,
        "kill_file": kill.name if kill.engaged() else None,
        **policy.as_dict(),
        "by_status": by_state(counts.by_status, counts.retry_waiting),
        "awaiting_approval": counts.awaiting_approval,
        "workflows_awaiting_approval": counts.workflows_awaiting_approval,
        "workflows_open": counts.workflows_open,
        "scheduled": counts.scheduled,
        "retry_waiting": counts.retry_waiting,
        "executing": counts.executing,
        "executions_per_minute": done,
        "failures_per_minute": failed,
        "budgets_spent": [],
    }
    if as_json:
        return json_text(data)
    banner = (
        "EXECUTE"
        if mode.upper() == "EXECUTE"
        else f"OBSERVE (execution off: {visible(reason)}, by {visible(by)})"
    )
    lines = [
        f"database      {visible(data['db'])}",
        f"safety mode   {banner}",
        f"approval mode {'on' if policy.approval_mode else 'off'}   four-eyes "
        f"{'on' if policy.four_eyes else 'off'}   (database policy, set by "
        f"{policy.changed_by or '-'})",
        f"awaiting approval {counts.awaiting_approval} action(s), "
        f"{counts.workflows_awaiting_approval} workflow(s)",
        f"executing {counts.executing}  scheduled {counts.scheduled}  "
        f"retry-waiting {counts.retry_waiting}  open workflows {counts.workflows_open}",
        "by status     "
        + "  ".join(f"{visible(k)} {v}" for k, v in sorted(data["by_status"].items())),
    ]
    peak = max(1, *done)
    for label, series in (("executions/min (1h)", done), ("failures/min   (1h)", failed)):
        lines.append(f"{label} {spark(series, peak)} total {sum(series)}")
    return "\n".join(lines)


def actions_list(snap: Snapshot, opts: dict[str, str], as_json: bool) -> str | None:
    st = ActionStatus(opts["status"]) if "status" in opts else None
    limit = int(opts.get("limit", 50))
    rows = lookups.list_proposals(snap._conn, st, limit=limit, views=True)
    if as_json:
        return json_text([model_json(p) for p in rows])
    return table_text(ACTION_COLUMNS, [action_row(p) for p in rows])


def workflows_list(snap: Snapshot, opts: dict[str, str], as_json: bool) -> str:
    wfs = snap.list_workflows(limit=int(opts.get("limit", 50)))
    steps = snap.list_workflow_steps([w.id for w in wfs if w.id is not None])
    rows = [(w, steps.get(w.id or 0, [])) for w in wfs]
    if as_json:
        return json_text(
            [{**model_json(w), "steps": [model_json(s) for s in st]} for w, st in rows]
        )
    return table_text(WORKFLOW_COLUMNS, [workflow_row(w, st) for w, st in rows])


def workflows_show(snap: Snapshot, target: int, as_json: bool) -> str | None:
    conn = snap._conn
    row = conn.execute(WORKFLOW_SQL, (target,)).fetchone()
    if row is None:
        return None  # the Typer path says there is no such workflow
    wf = row_to_workflow(row, True)
    steps = lookups.workflow_actions(conn, target, views=True)
    who = lookups.identities(conn, True, target)
    if as_json:
        return json_text(
            {**model_json(wf), "steps": [model_json(s) for s in steps], "identities": who}
        )
    lines = [
        f"workflow {wf.id}: {visible(wf.name)}  [{wf.status.value}]  {visible(wf.description)}"
    ]
    if wf.approved_by:
        from operator_core.identity import actor_text

        approver = actor_text(wf.approved_by, who["approved_identity"] or "?")
        lines.append(f"  approved by {visible(approver)} at {fmt_time(wf.approved_at)}")
    for s in steps:
        lines.append(
            f"  {s.execution_order + 1}. #{s.id} {visible(s.action_name)} "
            f"{visible(params_line(s.parameters))}  [{state_label(s)}]"
        )
    return "\n".join(lines)


def budget_spent(snap: Snapshot) -> bool:
    """Whether a budget is spent now: its lines are the Typer path's to print."""
    last = snap._conn.execute(LAST_SLOT_SQL).fetchone()[0]
    return last is not None and from_db(last) > snap.clock.now()


def actions_show(snap: Snapshot, target: int, subject_spec: str, as_json: bool) -> str | None:
    if budget_spent(snap):
        return None
    from operator_core.cli.fast_show import show_data

    data = show_data(snap._conn, target, subject_spec)
    if data is None:
        return None
    if as_json:
        return json_text(data)
    from operator_core.cli.show_action import action_text

    return action_text(data)


def audit_tail(snap: Snapshot, opts: dict[str, str], as_json: bool) -> str:
    events = snap.list_audit_events(limit=int(opts.get("lines", 20)))
    if as_json:
        return json_text([model_json(e) for e in events])
    lines = []
    for e in events:
        target = (
            f"action {e.proposal_id}"
            if e.proposal_id
            else (f"workflow {e.workflow_id}" if e.workflow_id else "-")
        )
        lines.append(
            f"{e.id}\t{fmt_time(e.timestamp)}\t{visible(e.event_type)}\t{target}\t"
            f"{visible(e.actor)}\t{json_line(e.event_data)}"
        )
    return "\n".join(lines)


def _checked(command: tuple[str, ...], opts: dict[str, str]) -> bool:
    """Every value is one the Typer command accepts as it is."""
    executions = command == ("automations", "executions")
    # An execution's status the engine checks (``fast_automations``).
    if (
        not executions
        and "status" in opts
        and opts["status"] not in {s.value for s in ActionStatus}
    ):
        return False
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
    conn = _open(path)
    if conn is None:
        return None
    as_json = "--json" in opts
    held = inuse.hold_shared(path)  # as an open ActionDB does
    try:
        conn.execute("BEGIN")
        try:
            snap = Snapshot(conn, SYSTEM_CLOCK, views=True)
            if command == ("status",):
                text: str | None = status(snap, path, as_json)
            elif command == ("actions", "list"):
                text = actions_list(snap, opts, as_json)
            elif command == ("workflows", "list"):
                text = workflows_list(snap, opts, as_json)
            elif command == ("workflows", "show"):
                text = workflows_show(snap, int(opts["arg"]), as_json)
            elif command[0] == "automations":
                # Imported here: the dataclasses they read into cost the other commands.
                from operator_core.cli import fast_automations

                if command[1] == "list":
                    text = fast_automations.automations_list(conn, as_json)
                else:
                    limit = int(opts.get("limit", 100))
                    text = fast_automations.executions_list(conn, opts, limit, as_json)
            elif command == ("actions", "show"):
                spec = glob.get("--subject") or os.environ.get("OPERATOR_SUBJECT") or "demo"
                text = actions_show(snap, int(opts["arg"]), spec, as_json)
            else:
                text = audit_tail(snap, opts, as_json)
        finally:
            conn.execute("COMMIT")
    except Exception:  # a row it cannot read: the Typer path answers as it would
        return None
    finally:
        conn.close()
        inuse.release(held)
    if text is not None and "\x1b" in text:
        return None  # click strips escape sequences from a pipe; let it
    return text


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
