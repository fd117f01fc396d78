"""Automation executions as the CLI and the dashboard see and steer them: a manual run, a
cancel, the lists. The walk itself is the runner's (``automation_runner.py``): a manual run
stores a PENDING execution due now, which the runner starts like any other.
"""

from __future__ import annotations

import sqlite3

from operator_core.actions import limits
from operator_core.actions.executor_base import ExecutorBase
from operator_core.db import automations as automation_db
from operator_core.db import executions as execution_db
from operator_core.db import safety
from operator_core.db import tickets as ticket_db
from operator_core.db.executions import (
    STATUSES,
    Execution,
    ExecutionNotFoundError,
    ExecutionProposal,
    ProposalOrigin,
)
from operator_core.errors import InvalidTransitionError, ValidationError
from operator_core.identity import actor_text

__all__ = ["ExecutionNotFoundError", "RunningAutomations"]

MAX_LIST = 1000


def _start_manual(
    conn: sqlite3.Connection, name: str, ticket_id: int, actor: str, now: str
) -> Execution:
    automation = automation_db.require(conn, name)
    ticket = ticket_db.require(conn, ticket_id)
    if not automation.enabled:
        raise InvalidTransitionError(
            f"automation {name!r} is disabled; 'operator automations enable {name}' first"
        )
    if ticket.status == "resolved":
        raise InvalidTransitionError(f"ticket {ticket_id} is resolved; nothing to run it on")
    # Refused while execution is off, as a direct proposal is.
    safety.require_execute(conn)
    row = conn.execute(
        automation_db.VERSION_SQL, (automation.id, automation.current_version)
    ).fetchone()
    new_id = execution_db.insert(
        conn,
        automation_id=automation.id,
        name=automation.name,
        version=automation.current_version,
        definition=row["definition"],
        ticket_id=ticket_id,
        trigger="manual",
        event_id=None,
        started_by=actor,
        now=now,
        wake=now,
    )
    if new_id is None:
        open_id = execution_db.open_execution_id(conn, automation.id, ticket_id)
        raise InvalidTransitionError(
            f"automation {name!r} already has execution {open_id} open on ticket {ticket_id}"
        )
    execution = execution_db.require(conn, new_id)
    execution_db.audit(conn, "automation_run_requested", execution, actor, now)
    return execution


def _check_id(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        raise ValidationError(f"{what} is a positive whole number, got {value!r}", what)
    return value


class RunningAutomations(ExecutorBase):
    """Start, cancel and read automation executions."""

    async def run_automation(self, name: str, ticket_id: int, actor: str) -> Execution:
        """Start automation ``name`` on a ticket by hand (the ``manual`` trigger): refused for
        a disabled automation, a resolved ticket, while execution is off, or while one is
        already open for them. The runner walks it from its next cycle."""
        _check_id(ticket_id, "ticket")
        return await self.db.write(
            _start_manual,
            name,
            ticket_id,
            actor_text(actor, self.identity),
            self.db.clock.now_text(),
        )

    async def cancel_execution(
        self, execution_id: int, actor: str, reason: str = "cancelled by an operator"
    ) -> Execution:
        """Cancel an open execution and its pending proposals (running ones are asked to
        stop); InvalidTransitionError when it had already finished."""
        _check_id(execution_id, "execution")
        text = limits.text(reason, "the reason", "reason").strip() or "cancelled by an operator"
        return await self.db.write(
            execution_db.cancel_by_id,
            execution_id,
            text,
            actor_text(actor, self.identity),
            self.identity,
            self.db.clock.now_text(),
        )

    async def list_executions(
        self, automation: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Execution]:
        """Newest first, optionally of one automation and in one status."""
        if status is not None:
            status = status.upper()
            if status not in STATUSES:
                raise ValidationError(
                    f"unknown execution status {status.lower()!r} (one of "
                    f"{', '.join(s.lower() for s in STATUSES)})",
                    "status",
                )
        if automation is not None:
            await self.db.read(automation_db.require, automation)
        return await self.db.read(
            execution_db.list_executions, automation, status, max(1, min(limit, MAX_LIST))
        )

    async def latest_executions(self) -> dict[str, Execution]:
        """Each automation's newest execution, by name (for a list of automations)."""
        return await self.db.read(execution_db.latest_per_automation)

    async def get_execution(self, execution_id: int) -> Execution:
        _check_id(execution_id, "execution")
        return await self.db.read(execution_db.require, execution_id)

    async def execution_proposals(self, execution_id: int) -> list[ExecutionProposal]:
        """The proposals an execution's nodes made, oldest first."""
        return await self.db.read(execution_db.proposals, execution_id)

    async def proposal_origin(self, proposal_id: int) -> ProposalOrigin | None:
        """The automation, version, node and execution that made a proposal (None: not an
        automation's)."""
        return await self.db.read(execution_db.proposal_origin, proposal_id)
