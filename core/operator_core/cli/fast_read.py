"""The fast path's answers (``fast``): the reading commands, read with sqlite3 and the light
read modules (``db.snapshot``, ``db.lookups``) and printed as the Typer commands in
``reading.py`` print them. ``fast`` imports this module only for a vector it serves, so
``--version`` and a vector it declines load none of it.
"""

from __future__ import annotations

# The C module behind the sqlite3 package (the same classes and functions): the package also
# registers datetime adapters, which these reads (of text) never use.
import _sqlite3 as sqlite3
import os

from operator_core.cli.formats import (
    ACTION_COLUMNS,
    WORKFLOW_COLUMNS,
    action_row,
    by_state,
    fmt_time,
    json_line,
    json_text,
    json_time,
    model_json,
    table_text,
    workflow_lines,
    workflow_row,
)
from operator_core.clock import SYSTEM_CLOCK, from_db
from operator_core.db import health, inuse, lookups
from operator_core.db.rows import WORKFLOW_SQL, row_to_workflow
from operator_core.db.schema import LATEST_VERSION
from operator_core.db.snapshot import Snapshot
from operator_core.model.states import ActionStatus
from operator_core.safe_text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATUSES = {s.value for s in ActionStatus}
BLOCKS = " ▁▂▃▄▅▆▇█"
"""The bars of ``sparklines`` (a test holds ``spark`` to the library's own output)."""


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
    return "\n".join(workflow_lines(wf, steps, who))


def budget_spent(snap: Snapshot) -> bool:
    """Whether a budget is spent now: its lines are the Typer path's to print."""
    last = snap._conn.execute(LAST_SLOT_SQL).fetchone()[0]
    return last is not None and from_db(last) > snap.clock.now()


def actions_show(
    snap: Snapshot, path: str, target: int, subject_spec: str, as_json: bool
) -> str | None:
    if budget_spent(snap):
        return None
    from operator_core.cli.fast_show import show_data

    data = show_data(snap._conn, path, target, subject_spec)
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


def read(
    path: str, glob: dict[str, str], command: tuple[str, ...], opts: dict[str, str]
) -> str | None:
    """The text the Typer app would print for this parsed vector (without its last
    newline), or None where it would print something else."""
    # (An execution's status the engine checks: ``fast_automations``.)
    executions = command == ("automations", "executions")
    if not executions and opts.get("status", "validated") not in STATUSES:
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
                text = actions_show(snap, path, int(opts["arg"]), spec, as_json)
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
