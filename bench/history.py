"""Databases with a long history for the dashboard benchmark, generated fast and cached.

The schema is the real one: ``ActionDB`` opens (and migrates) the file first; then one
transaction of plain inserts adds a realistic mix: most actions completed long ago, some
failed or cancelled, a backlog awaiting approval, scheduled follow-ups, a retry backlog,
workflows of three steps in every state, one record per attempt and the audit events each
step of the lifecycle writes (hash-chained like the engine's). The last hour has activity,
so the header's sparklines have something to draw.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import DB_TIME_FORMAT

GENERATOR_VERSION = 3  # 3: databases made at the engine's page size (2048)
CACHE = Path(tempfile.gettempdir()) / "operator-bench-dbs"

ACTIONS = [
    (
        "transfer_leader",
        lambda r: {"region_id": r.randrange(1, 500), "to_store_id": f"store-{r.randrange(1, 9)}"},
    ),
    ("restart_store", lambda r: {"store_id": f"store-{r.randrange(1, 9)}"}),
    ("drain_store", lambda r: {"store_id": f"store-{r.randrange(1, 9)}", "force": False}),
    ("check_health", lambda r: {}),
]
AGENTS = ["agent", "monitor", "alice@ops-1", "bob@ops-2"]


def _ts(t: datetime) -> str:
    return t.strftime(DB_TIME_FORMAT)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class _Audit:
    """Appends hash-chained audit rows the way the engine does."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.prev = "0" * 64

    def add(
        self,
        pid: int | None,
        wf: int | None,
        event: str,
        data: dict[str, Any],
        actor: str,
        at: datetime,
    ) -> None:
        body = _json(data)
        ts = _ts(at)
        digest = hashlib.sha256(
            _json([self.prev, pid, wf, event, body, actor, ts]).encode()
        ).hexdigest()
        self.rows.append((pid, wf, event, body, actor, ts, self.prev, digest))
        self.prev = digest


def _fill(conn: sqlite3.Connection, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    conn.execute("CREATE TABLE bench_history (generated_at TEXT NOT NULL)")
    conn.execute("INSERT INTO bench_history VALUES (?)", (_ts(now),))
    span = timedelta(days=30)
    tickets, workflows, proposals, records = [], [], [], []
    audit = _Audit()
    n_tickets = max(1, n // 20)
    for t in range(1, n_tickets + 1):
        created = now - span + span * (t / n_tickets)
        tickets.append(
            (
                t,
                f"incident {t}",
                "latency on region",
                rng.choice(["low", "medium", "high"]),
                "open" if t > n_tickets - 20 else "resolved",
                _ts(created),
            )
        )

    pid = 0
    wf_id = 0
    while pid < n:
        age_frac = pid / max(n, 1)
        proposed = now - span + span * age_frac - timedelta(seconds=rng.uniform(0, 60))
        recent = pid >= n - max(1, n // 50)  # the newest 2% is the live edge
        roll = rng.random()
        if recent and roll < 0.5:
            state = "awaiting"
        elif recent and roll < 0.65:
            state = "scheduled"
        elif recent and roll < 0.75:
            state = "retry"
        elif roll < 0.03:
            state = "failed"
        elif roll < 0.08:
            state = "cancelled"
        else:
            state = "completed"
        if recent:
            proposed = now - timedelta(minutes=rng.uniform(0, 60))
        in_workflow = rng.random() < 0.06 and pid + 3 <= n
        steps = 3 if in_workflow else 1
        ticket = rng.randrange(1, n_tickets + 1)
        wf = None
        if in_workflow:
            wf_id += 1
            wf = wf_id
            wf_status = {
                "awaiting": "pending",
                "scheduled": "in_progress",
                "retry": "in_progress",
                "failed": "failed",
                "cancelled": "cancelled",
            }.get(state, "completed")
            approved = None if state == "awaiting" else proposed + timedelta(seconds=30)
            workflows.append(
                (
                    wf,
                    f"remediate ticket {ticket}",
                    "drain, move leaders, check",
                    ticket,
                    wf_status,
                    _ts(proposed),
                    1,
                    _ts(approved) if approved else None,
                    "alice@ops-1" if approved else None,
                    "agent",
                    None
                    if wf_status in ("pending", "in_progress")
                    else _ts(proposed + timedelta(minutes=5)),
                )
            )
            audit.add(
                None,
                wf,
                "workflow_created",
                {"name": f"remediate ticket {ticket}", "action_count": 3},
                "agent",
                proposed,
            )
        for step in range(steps):
            pid += 1
            name, make = rng.choice(ACTIONS)
            params = make(rng)
            step_state = state
            if in_workflow and step > 0 and state in ("failed", "cancelled"):
                step_state = "cancelled"
            elif in_workflow and step > 0 and state in ("scheduled", "retry"):
                step_state = "awaiting_dep"
            needs = rng.random() < 0.5 or step_state == "awaiting" or in_workflow
            approved_at = None
            if needs and step_state != "awaiting":
                approved_at = proposed + timedelta(seconds=rng.uniform(5, 600))
            t = proposed
            status = {
                "awaiting": "validated",
                "scheduled": "validated",
                "awaiting_dep": "validated",
                "retry": "failed",
            }.get(step_state, step_state)
            scheduled_at = (
                now + timedelta(seconds=rng.uniform(30, 7200))
                if step_state == "scheduled"
                else None
            )
            retry_count = rng.randrange(1, 3) if step_state in ("retry", "failed") else 0
            next_retry = (
                now + timedelta(seconds=rng.uniform(5, 600)) if step_state == "retry" else None
            )
            start = (approved_at or proposed) + timedelta(seconds=rng.uniform(0.01, 2))
            finished = None
            last_error = None
            audit.add(
                pid,
                wf,
                "proposed",
                {"action": name, "parameters": params, "validated": True},
                "agent",
                t,
            )
            if approved_at:
                audit.add(pid, wf, "approved", {}, "alice@ops-1", approved_at)
            attempts = 0
            if step_state in ("completed", "failed", "retry"):
                attempts = retry_count + 1 if step_state != "retry" else retry_count
            for attempt in range(1, attempts + 1):
                ok = step_state == "completed" and attempt == attempts
                done = start + timedelta(seconds=rng.uniform(0.05, 3))
                error = None if ok else "store unreachable"
                records.append(
                    (
                        pid,
                        _ts(start),
                        _ts(done),
                        int(ok),
                        error,
                        _json({"ok": True}) if ok else None,
                        attempt,
                        "runner-1",
                    )
                )
                audit.add(pid, wf, "execution_started", {"attempt": attempt}, "runner", start)
                audit.add(
                    pid,
                    wf,
                    "completed" if ok else "retry_scheduled",
                    {"attempt": attempt} if ok else {"error": error},
                    "runner",
                    done,
                )
                finished = done
                last_error = error
                start = done + timedelta(seconds=rng.uniform(1, 30))
            cancelled_at = None
            if step_state == "cancelled":
                cancelled_at = proposed + timedelta(seconds=rng.uniform(1, 300))
                finished = cancelled_at
                audit.add(
                    pid,
                    wf,
                    "cancelled",
                    {"reason": "cancelled by operator"},
                    "bob@ops-2",
                    cancelled_at,
                )
            proposals.append(
                (
                    pid,
                    ticket,
                    name,
                    "subject",
                    _json(params),
                    f"ticket {ticket}: {name}",
                    status,
                    _ts(proposed),
                    rng.choice(AGENTS),
                    _ts(proposed),
                    _ts(cancelled_at) if cancelled_at else None,
                    "cancelled by operator" if cancelled_at else None,
                    int(needs),
                    _ts(approved_at) if approved_at else None,
                    "alice@ops-1" if approved_at else None,
                    wf,
                    step if wf else 0,
                    pid - 1 if wf and step > 0 else None,
                    _ts(scheduled_at) if scheduled_at else None,
                    retry_count,
                    3,
                    _ts(next_retry) if next_retry else None,
                    last_error,
                    _ts(finished) if finished and not next_retry else None,
                    _ts(proposed),
                    _ts(proposed),
                )
            )
    conn.executemany(
        "INSERT INTO tickets (id, title, summary, severity, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        tickets,
    )
    conn.executemany(
        "INSERT INTO workflows (id, name, description, ticket_id, status, created_at, "
        "requires_approval, approved_at, approved_by, proposed_by, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        workflows,
    )
    conn.executemany(
        "INSERT INTO action_proposals (id, ticket_id, action_name, action_type, parameters,"
        " reason, status, proposed_at, proposed_by, validated_at, cancelled_at, "
        "cancel_reason, requires_approval, approved_at, approved_by, workflow_id, "
        "execution_order, depends_on_proposal_id, scheduled_at, retry_count, max_retries, "
        "next_retry_at, last_error, finished_at, created_at, updated_at) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        proposals,
    )
    conn.executemany(
        "INSERT INTO action_records (proposal_id, started_at, completed_at, success, "
        "error_message, result_data, attempt, runner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        records,
    )
    conn.executemany(
        "INSERT INTO action_audit_log (proposal_id, workflow_id, event_type, event_data, "
        "actor, timestamp, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        audit.rows,
    )


async def _create_schema(path: Path) -> None:
    from operator_core.db.actions import ActionDB

    async with ActionDB(path) as db:
        await db.data_version()


def generate(path: Path, n: int) -> None:
    """A fresh database at ``path`` with ``n`` actions of history."""
    asyncio.run(_create_schema(path))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        _fill(conn, n)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def cached_history(n: int) -> Path:
    """The cached ``n``-action database (generated on first use); never open it for writing."""
    from operator_core.db.schema import LATEST_VERSION

    CACHE.mkdir(mode=0o700, exist_ok=True)
    cached = CACHE / f"history-v{GENERATOR_VERSION}-s{LATEST_VERSION}-{n}.db"
    if not cached.exists():
        partial = cached.with_suffix(".partial")
        for leftover in CACHE.glob(partial.name + "*"):
            leftover.unlink()
        generate(partial, n)
        partial.rename(cached)
    return cached


def history_db(n: int, dest: Path) -> Path:
    """A fresh copy of the cached ``n``-action database in the directory ``dest``, its live
    edge moved to now: what is due (scheduled follow-ups, retries, expiries) is as far ahead
    and the last hour's activity as recent as when it was generated, so a run does not depend
    on how old the cache is (countdowns that tick cost the dashboard CPU)."""
    cached = cached_history(n)
    target = dest / f"history-{n}.db"
    shutil.copyfile(cached, target)
    target.chmod(0o600)
    _move_to_now(target)
    return target


def _shift(value: str | None, by: timedelta) -> str | None:
    from operator_core.clock import from_db, to_db

    moved = from_db(value)
    return None if moved is None else to_db(moved + by)


def _move_to_now(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        generated = conn.execute("SELECT generated_at FROM bench_history").fetchone()[0]
        by = datetime.now(UTC) - datetime.fromisoformat(generated)
        hour_before = _shift(generated, timedelta(hours=-1))
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            "SELECT id, proposed_at, scheduled_at, next_retry_at, expires_at FROM "
            "action_proposals WHERE proposed_at >= ? OR scheduled_at IS NOT NULL OR "
            "next_retry_at IS NOT NULL OR expires_at IS NOT NULL",
            (hour_before,),
        ).fetchall()
        conn.executemany(
            "UPDATE action_proposals SET proposed_at = ?, scheduled_at = ?, next_retry_at = ?,"
            " expires_at = ? WHERE id = ?",
            [
                (
                    _shift(p, by) if p >= hour_before else p,
                    _shift(s, by),
                    _shift(r, by),
                    _shift(e, by),
                    i,
                )
                for i, p, s, r, e in rows
            ],
        )
        records = conn.execute(
            "SELECT id, started_at, completed_at FROM action_records WHERE completed_at >= ?",
            (hour_before,),
        ).fetchall()
        conn.executemany(
            "UPDATE action_records SET started_at = ?, completed_at = ? WHERE id = ?",
            [(_shift(s, by), _shift(c, by), i) for i, s, c in records],
        )
        conn.execute("UPDATE bench_history SET generated_at = ?", (_ts(datetime.now(UTC)),))
        conn.execute("COMMIT")
    finally:
        conn.close()
