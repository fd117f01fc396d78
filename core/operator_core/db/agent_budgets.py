"""Agents' proposal budgets and allow-lists: kept per agent in ``agent_budgets``, checked
inside the transaction that inserts an agent's proposals.

The check counts the agent's proposals in the window in the same write transaction
(BEGIN IMMEDIATE) as the insert, so two processes proposing for one agent at once cannot
both slip under its limit. A workflow counts each of its steps. A refusal rolls its
transaction back; ``write_checked`` then audits it in one of its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from operator_core.clock import from_db, short, span, to_db
from operator_core.db import audit
from operator_core.db.dialect import Sql
from operator_core.db.records import AuditEntry
from operator_core.errors import ValidationError

if TYPE_CHECKING:
    from operator_core.db.connection import Store

T = TypeVar("T")

# One agent's budget (by primary key).
AGENT_BUDGET_SQL = """
SELECT agent, max_proposals, per_seconds, allow, set_at, set_by FROM agent_budgets
WHERE agent = ?
"""

# Every agent's budget, by name (a small table).
AGENT_BUDGETS_SQL = """
SELECT agent, max_proposals, per_seconds, allow, set_at, set_by FROM agent_budgets
ORDER BY agent
"""

# Set an agent's budget, replacing what it had (by primary key).
SET_AGENT_BUDGET_SQL = """
INSERT INTO agent_budgets (agent, max_proposals, per_seconds, allow, set_at, set_by)
VALUES (:agent, :max, :per, :allow, :now, :actor)
ON CONFLICT (agent) DO UPDATE SET max_proposals = excluded.max_proposals,
    per_seconds = excluded.per_seconds, allow = excluded.allow, set_at = excluded.set_at,
    set_by = excluded.set_by
"""

# Remove an agent's budget (by primary key).
CLEAR_AGENT_BUDGET_SQL = "DELETE FROM agent_budgets WHERE agent = ?"

# An agent's proposals in its window, oldest first (idx_agent_proposals: it holds only the
# rows whose proposed_by is an agent's, and a query uses it only if it states that range).
# PostgreSQL compares text by the database's collation, where ':' and ';' may not order as
# bytes do: its index holds every proposer, and the query states no range.
AGENT_WINDOW_SQL = Sql(
    sqlite="""
SELECT proposed_at FROM action_proposals INDEXED BY idx_agent_proposals
WHERE proposed_by = :label AND proposed_by >= 'agent:' AND proposed_by < 'agent;'
    AND proposed_at > :since
ORDER BY proposed_at
""",
    postgres="""
SELECT proposed_at FROM action_proposals
WHERE proposed_by = %(label)s AND proposed_at > %(since)s
ORDER BY proposed_at
""",
)


class AgentBudgetError(ValidationError):
    """An agent's proposal over its budget or outside its allow-list: refused, audited."""

    def __init__(self, message: str, agent: str, data: dict[str, Any]) -> None:
        super().__init__(message, "agent")
        self.agent = agent
        self.data = data


@dataclass(frozen=True)
class AgentBudget:
    """What one agent may propose: ``max_proposals`` per ``per_seconds`` (None: no rate
    limit) and only the actions in ``allow`` (empty: any)."""

    agent: str
    max_proposals: int | None
    per_seconds: float | None
    allow: tuple[str, ...]
    set_at: datetime | None
    set_by: str
    used: int = 0
    next_at: datetime | None = field(default=None)

    def limit_text(self) -> str:
        if self.max_proposals is None or self.per_seconds is None:
            return "no limit"
        return f"{self.max_proposals} per {span(self.per_seconds)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "max_proposals": self.max_proposals,
            "per_seconds": self.per_seconds,
            "allow": list(self.allow),
            "used": self.used,
            "next_at": to_db(self.next_at),
            "set_at": to_db(self.set_at),
            "set_by": self.set_by,
        }


def agent_of(proposed_by: str, identity: str) -> str | None:
    """The agent a proposal comes from: its identity if an agent's (``agent:NAME@host``,
    what ``operator mcp`` records), else its label if it names one (``--actor
    agent:NAME``); None for a person or a program that is no agent."""
    if identity.startswith("agent:"):
        return identity.removeprefix("agent:").rpartition("@")[0] or None
    if proposed_by.startswith("agent:"):
        return proposed_by.removeprefix("agent:").strip() or None
    return None


def _row(row: Any) -> AgentBudget:
    return AgentBudget(
        row[0], row[1], row[2], tuple(json.loads(row[3]) if row[3] else ()), from_db(row[4]), row[5]
    )


def _window(conn: sqlite3.Connection, b: AgentBudget, now_dt: datetime) -> list[str]:
    if b.max_proposals is None or b.per_seconds is None:
        return []
    since = to_db(now_dt - timedelta(seconds=b.per_seconds))
    return [
        r[0] for r in conn.execute(AGENT_WINDOW_SQL, {"label": f"agent:{b.agent}", "since": since})
    ]


def _next_at(b: AgentBudget, window: list[str], wanted: int) -> datetime | None:
    """When ``wanted`` more proposals fit (None: now, or never: more than the budget)."""
    assert b.max_proposals is not None and b.per_seconds is not None
    over = len(window) + wanted - b.max_proposals
    if over <= 0 or over > len(window):
        return None
    leaving = from_db(window[over - 1])
    assert leaving is not None
    return leaving + timedelta(seconds=b.per_seconds)


def check_agent(
    conn: sqlite3.Connection,
    proposed_by: str,
    identity: str,
    actions: Sequence[str],
    now: str,
) -> None:
    """Refuse (AgentBudgetError) proposals of ``actions`` by an agent outside its
    allow-list or over its budget. Nothing to check for a proposer that is no agent."""
    name = agent_of(proposed_by, identity)
    if name is None:
        return
    now_dt = from_db(now)
    assert now_dt is not None
    row = conn.execute(AGENT_BUDGET_SQL, (name,)).fetchone()
    if row is None:
        return
    b = _row(row)
    denied = sorted({a for a in actions if b.allow and a not in b.allow})
    if denied:
        raise AgentBudgetError(
            f"agent {name}: may not propose {', '.join(denied)} (its allow-list: "
            f"{', '.join(b.allow)}; set by {b.set_by})",
            name,
            {"agent": name, "refused": "allow-list", "actions": denied, "allow": list(b.allow)},
        )
    if b.max_proposals is None or b.per_seconds is None:
        return
    window = _window(conn, b, now_dt)
    data = {
        "agent": name,
        "refused": "budget",
        "actions": list(actions),
        "max_proposals": b.max_proposals,
        "per_seconds": b.per_seconds,
        "used": len(window),
    }
    limit = f"{b.max_proposals} proposals per {span(b.per_seconds)}"
    if b.max_proposals == 0:
        raise AgentBudgetError(
            f"agent {name}: its budget allows no proposals ({limit}; set by {b.set_by})",
            name,
            data,
        )
    if len(actions) > b.max_proposals:
        raise AgentBudgetError(
            f"agent {name}: {len(actions)} proposals at once (a workflow counts each step) "
            f"exceed its budget of {limit}",
            name,
            data,
        )
    at = _next_at(b, window, len(actions))
    if at is None:
        return
    wait = short((at - now_dt).total_seconds())
    raise AgentBudgetError(
        f"agent {name}: {len(window)} of {limit} used; next in {wait}",
        name,
        {**data, "next_at": to_db(at)},
    )


def set_budget(
    conn: sqlite3.Connection,
    agent: str,
    max_proposals: int | None,
    per_seconds: float | None,
    allow: Sequence[str],
    actor: str,
    now: str,
) -> None:
    """Give ``agent`` this budget and allow-list, replacing any it had (audited)."""
    conn.execute(
        SET_AGENT_BUDGET_SQL,
        {
            "agent": agent,
            "max": max_proposals,
            "per": per_seconds,
            "allow": json.dumps(sorted(set(allow))) if allow else None,
            "now": now,
            "actor": actor,
        },
    )
    data = {
        "agent": agent,
        "max_proposals": max_proposals,
        "per_seconds": per_seconds,
        "allow": sorted(set(allow)),
    }
    audit.append(conn, AuditEntry("agent_budget_set", data, actor), now)


def clear_budget(conn: sqlite3.Connection, agent: str, actor: str, now: str) -> bool:
    """Remove ``agent``'s budget and allow-list (audited); False if it had none."""
    if conn.execute(CLEAR_AGENT_BUDGET_SQL, (agent,)).rowcount == 0:
        return False
    audit.append(conn, AuditEntry("agent_budget_cleared", {"agent": agent}, actor), now)
    return True


def list_budgets(conn: sqlite3.Connection, now_dt: datetime) -> list[AgentBudget]:
    """Every agent's budget with its use in the current window."""
    out = []
    for row in conn.execute(AGENT_BUDGETS_SQL).fetchall():
        b = _row(row)
        window = _window(conn, b, now_dt)
        at = _next_at(b, window, 1) if window else None
        out.append(
            AgentBudget(
                b.agent,
                b.max_proposals,
                b.per_seconds,
                b.allow,
                b.set_at,
                b.set_by,
                len(window),
                at,
            )
        )
    return out


def audit_refusal(conn: sqlite3.Connection, exc: AgentBudgetError, actor: str, now: str) -> None:
    audit.append(
        conn, AuditEntry("agent_proposal_refused", {**exc.data, "message": str(exc)}, actor), now
    )


async def write_checked(store: Store, actor: str, fn: Callable[..., T], *args: Any) -> T:
    """``store._write(fn, *args)``; an agent's refusal is audited in a transaction of its
    own (the refused one rolled back), then raised."""
    try:
        return await store._write(fn, *args)
    except AgentBudgetError as exc:
        await store._write(audit_refusal, exc, actor, store._now())
        raise
