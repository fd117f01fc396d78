"""The runner's automation step: start executions for ticket events and age thresholds, and
move due executions on. Each pass is one write transaction, so on SQLite two runners are
serialised (BEGIN IMMEDIATE) and each event or wake-up is handled once: an execution's
insert does nothing when one is open already, and the walker ignores a stale event.

An action node's proposal goes through the executor's own checks (``build_proposal``) and
the same insert as ``operator propose`` (``db.proposals.store_proposal``), so approval mode,
``requires_approval``, four-eyes and the kill switch hold it exactly as a direct proposal.
A proposal that cannot be made (unknown action, bad parameter, execution off) fails its node
with the reason; it never stops the runner.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from operator_core.automations.conditions import TicketEvent, trigger_matches
from operator_core.automations.definition import AutomationDefinition, parse_definition
from operator_core.automations.placeholders import WorkflowFacts
from operator_core.automations.walker import (
    FAILED,
    ActionFinished,
    ActionProposed,
    CancelProposal,
    Event,
    ExecutionState,
    ProposeAction,
    Start,
    Step,
    Tick,
    advance,
)
from operator_core.clock import from_db, to_db
from operator_core.db import executions as execution_db
from operator_core.db import faults
from operator_core.db import tickets as ticket_db
from operator_core.db.executions import Candidate, Execution
from operator_core.db.proposals import store_proposal
from operator_core.db.rows import row_to_ticket
from operator_core.errors import DatabaseError, OperatorError
from operator_core.model.ticket_facts import TicketFacts
from operator_core.model.types import Ticket

if TYPE_CHECKING:
    from operator_core.actions.executor import ActionExecutor

log = logging.getLogger("operator.automations")

BATCH = 100
AGE_BATCH = 500


@dataclass
class AutomationStats:
    started: int = 0
    advanced: int = 0
    proposed: int = 0


def proposer(name: str) -> str:
    """Who an automation's proposals are proposed by."""
    return f"{execution_db.AUTOMATION_ACTOR}{name}"


class AutomationStep:
    """What one runner does for automations in each cycle of its loop."""

    def __init__(self, executor: ActionExecutor, runner_id: str, lease_seconds: float) -> None:
        self.executor = executor
        self.db = executor.db
        self.runner_id = runner_id
        self.lease_seconds = lease_seconds
        self.stats = AutomationStats()
        self._definitions: dict[tuple[int, int], AutomationDefinition | None] = {}
        # Per age automation version: tickets created up to this time have been looked at.
        self._age_seen: dict[tuple[int, int], str] = {}
        self.age_due: datetime | None = None
        self._age_planned = False

    # ------------------------------------------------------------------ the cycle

    async def cycle(self, changed: bool) -> bool:
        """Handle what is waiting now: ticket events, due executions, age thresholds
        reached. ``changed``: another process wrote since the last cycle (an automation or a
        ticket may have changed, so the age plan is read again). True if it did anything."""
        now_dt = self.db.clock.now()
        now = to_db(now_dt) or ""
        events, due = await self.db.read(execution_db.work_waiting, now)
        did = False
        if events:
            did = bool(await self.db.write(self._events_tx, now_dt)) or did
        if changed or not self._age_planned or (self.age_due and self.age_due <= now_dt):
            self.age_due = await self.db.read(self._age_plan)
            self._age_planned = True
            if self.age_due is not None and self.age_due <= now_dt:
                seen = await self.db.write(self._age_tx, now_dt)
                self._age_seen.update(seen)
                self.age_due = await self.db.read(self._age_plan)
                did = True
        if due:
            did = bool(await self.db.write(self._due_tx, now_dt)) or did
        return did

    async def next_due(self) -> datetime | None:
        """When this step next has work: an execution's wake-up (now, if one is due), a ticket
        event (now, or when another runner's claim on it runs out), an age threshold."""

        def fn(conn: sqlite3.Connection) -> datetime | None:
            return execution_db.next_work(conn)

        times = [t for t in (await self.db.read(fn), self.age_due) if t is not None]
        return min(times, default=None)

    # ------------------------------------------------------------------ transactions

    def _events_tx(self, conn: sqlite3.Connection, now_dt: datetime) -> int:
        now = to_db(now_dt) or ""
        until = to_db(now_dt + timedelta(seconds=self.lease_seconds)) or ""
        handled = 0
        for event in ticket_db.claim_events(conn, self.runner_id, now, until, BATCH):
            conn.execute("SAVEPOINT ticket_event")
            try:
                self._on_event(conn, event, now_dt)
            except Exception as exc:
                if faults.trouble(exc) is not None:
                    raise
                # Left claimed: tried again once the claim runs out, never in a tight loop.
                conn.execute("ROLLBACK TO ticket_event")
                log.exception("ticket event %s could not be handled", event.id)
            else:
                ticket_db.consume_event(conn, event.id, self.runner_id, now)
                handled += 1
            conn.execute("RELEASE ticket_event")
        return handled

    def _on_event(
        self, conn: sqlite3.Connection, event: ticket_db.TicketEventRow, now_dt: datetime
    ) -> None:
        facts = ticket_db.facts(Ticket.model_validate(event.facts))
        current = ticket_db.require(conn, event.ticket_id)
        if current.status == "resolved" and event.to_status != "resolved":
            return  # resolved since: nothing to start on it
        trigger = TicketEvent(event.event_type, event.from_status, event.to_status)
        for candidate in execution_db.enabled_for(conn, event.event_type):
            d = self._definition(candidate.id, candidate.version, candidate.definition)
            if d is not None and trigger_matches(d, trigger, facts, now_dt):
                self._start(
                    conn, candidate, d, facts, event.event_type, event.id, event.actor, now_dt
                )

    def _age_plan(self, conn: sqlite3.Connection) -> datetime | None:
        """When the next open, unacknowledged ticket reaches an age automation's threshold."""
        due: datetime | None = None
        for candidate in execution_db.enabled_for(conn, "age"):
            d = self._definition(candidate.id, candidate.version, candidate.definition)
            threshold = d.trigger.age_threshold_minutes if d is not None else None
            if threshold is None:
                continue
            seen = self._age_seen.get((candidate.id, candidate.version), "")
            first = execution_db.next_age_ticket(conn, seen)
            if first is not None:
                at = first + timedelta(minutes=threshold)
                due = at if due is None else min(due, at)
        return due

    def _age_tx(self, conn: sqlite3.Connection, now_dt: datetime) -> dict[tuple[int, int], str]:
        """Start the age automations whose threshold open tickets reached; what was looked
        at (kept once this commits)."""
        seen: dict[tuple[int, int], str] = {}
        for candidate in execution_db.enabled_for(conn, "age"):
            d = self._definition(candidate.id, candidate.version, candidate.definition)
            threshold = d.trigger.age_threshold_minutes if d is not None else None
            if d is None or threshold is None:
                continue
            key = (candidate.id, candidate.version)
            cutoff = to_db(now_dt - timedelta(minutes=threshold)) or ""
            rows = execution_db.age_tickets(conn, self._age_seen.get(key, ""), cutoff, AGE_BATCH)
            for row in rows:
                facts = ticket_db.facts(row_to_ticket(row))
                if trigger_matches(d, TicketEvent("age"), facts, now_dt):
                    self._start(conn, candidate, d, facts, "age", None, "runner", now_dt)
            seen[key] = rows[-1]["created_at"] if len(rows) == AGE_BATCH else cutoff
        return seen

    def _due_tx(self, conn: sqlite3.Connection, now_dt: datetime) -> int:
        now = to_db(now_dt) or ""
        executions = execution_db.due(conn, now, BATCH)
        for execution in executions:
            conn.execute("SAVEPOINT execution")
            try:
                self._wake(conn, execution, now_dt)
            except Exception as exc:
                if faults.trouble(exc) is not None:
                    raise
                conn.execute("ROLLBACK TO execution")
                log.exception("automation execution %s could not be advanced", execution.id)
                self._fail(conn, execution, f"the runner could not advance it: {exc}", now)
            conn.execute("RELEASE execution")
        return len(executions)

    # ------------------------------------------------------------------ executions

    def _definition(
        self, automation_id: int, version: int, text: str | dict[str, object]
    ) -> AutomationDefinition | None:
        """A stored version's definition, parsed once (a version never changes)."""
        key = (automation_id, version)
        if key not in self._definitions:
            try:
                data = text if isinstance(text, dict) else json.loads(text)
                self._definitions[key] = parse_definition(data, f"automation version {version}")
            except (OperatorError, ValueError) as exc:
                log.error(
                    "automation %s version %s cannot be read: %s", automation_id, version, exc
                )
                self._definitions[key] = None
        return self._definitions[key]

    def _start(
        self,
        conn: sqlite3.Connection,
        candidate: Candidate,
        d: AutomationDefinition,
        facts: TicketFacts,
        trigger: str,
        event_id: int | None,
        actor: str,
        now_dt: datetime,
    ) -> None:
        now = to_db(now_dt) or ""
        new_id = execution_db.insert(
            conn,
            automation_id=candidate.id,
            name=candidate.name,
            version=candidate.version,
            definition=candidate.definition,
            ticket_id=facts.id or 0,
            trigger=trigger,
            event_id=event_id,
            started_by=actor,
            now=now,
        )
        if new_id is None:
            return  # one is open already for this automation and ticket (or age fired)
        execution = execution_db.require(conn, new_id)
        execution_db.audit(
            conn, "automation_execution_started", execution, "runner", now, trigger=trigger
        )
        self.stats.started += 1
        self._advance(conn, execution, d, [Start()], facts, now_dt)

    def _wake(self, conn: sqlite3.Connection, execution: Execution, now_dt: datetime) -> None:
        """A due execution: start it (a manual run), report the proposals that ended, and
        let time pass (delays, the timeout)."""
        d = self._definition(execution.automation_id, execution.version, execution.definition)
        if d is None:
            self._fail(conn, execution, "its frozen definition cannot be read", to_db(now_dt) or "")
            return
        facts = ticket_db.facts(ticket_db.require(conn, execution.ticket_id))
        events: list[Event] = []
        if execution.status == "PENDING":
            execution_db.audit(
                conn,
                "automation_execution_started",
                execution,
                "runner",
                to_db(now_dt) or "",
                trigger=execution.trigger,
            )
            self.stats.started += 1
            events.append(Start())
        else:
            made = {p.id: p for p in execution_db.proposals(conn, execution.id)}
            for node_id, result in execution.state.nodes.items():
                p = made.get(result.proposal_id or 0)
                if result.status == "running" and p is not None and p.ended:
                    ok = p.status == "completed"
                    error = None if ok else (p.last_error or p.cancel_reason or p.status)
                    events.append(ActionFinished(node_id, ok, error))
            events.append(Tick())
        self._advance(conn, execution, d, events, facts, now_dt)

    def _advance(
        self,
        conn: sqlite3.Connection,
        execution: Execution,
        d: AutomationDefinition,
        events: list[Event],
        facts: TicketFacts,
        now_dt: datetime,
    ) -> None:
        """Feed ``events`` to the walker, take every step it asks for (feeding back what
        each step did), store the state and audit what changed."""
        now = to_db(now_dt) or ""
        workflow = WorkflowFacts(execution.automation_name, execution.version, execution.id)
        state = execution.state
        steps: list[Step] = []

        def feed(event: Event) -> None:
            nonlocal state
            out = advance(d, state, event, now=now_dt, ticket=facts, workflow=workflow)
            state = out.state
            steps.extend(out.steps)

        for event in events:
            feed(event)
        while steps:
            step = steps.pop(0)
            if isinstance(step, ProposeAction):
                try:
                    proposal_id = self._propose(conn, execution, step, now_dt)
                except DatabaseError:
                    raise
                except OperatorError as exc:
                    feed(
                        ActionFinished(step.node_id, False, f"cannot propose {step.action}: {exc}")
                    )
                else:
                    feed(ActionProposed(step.node_id, proposal_id))
            elif isinstance(step, CancelProposal):
                execution_db.cancel_proposal(
                    conn,
                    step.proposal_id,
                    proposer(execution.automation_name),
                    step.reason,
                    None,
                    now,
                )
        execution_db.save(conn, execution.id, state, now)
        self._audit_changes(conn, execution, state, now)
        self.stats.advanced += 1

    def _propose(
        self, conn: sqlite3.Connection, execution: Execution, step: ProposeAction, now_dt: datetime
    ) -> int:
        ex = self.executor
        by = proposer(execution.automation_name)
        proposal, entry = ex.build_proposal(
            step.action,
            step.parameters,
            step.reason,
            ticket_id=execution.ticket_id,
            proposed_by=by,
            max_retries=step.max_retries,
        )
        entry.event_data.update(
            automation=execution.automation_name,
            version=execution.version,
            node=step.node_id,
            execution_id=execution.id,
        )
        stored = store_proposal(conn, proposal, [entry], ex.identity, to_db(now_dt) or "", True)
        assert stored.id is not None
        execution_db.attach_proposal(
            conn, stored.id, execution.id, step.node_id, step.retry_initial_delay_seconds
        )
        self.stats.proposed += 1
        return stored.id

    def _fail(self, conn: sqlite3.Connection, execution: Execution, error: str, now: str) -> None:
        """End an execution the runner cannot walk as FAILED, with its proposals cancelled."""
        state = ExecutionState.from_json(execution.state.to_json())
        now_dt = from_db(now)
        assert now_dt is not None
        for _, proposal_id in state.stop(FAILED, error, now_dt):
            execution_db.cancel_proposal(
                conn, proposal_id, proposer(execution.automation_name), error, None, now
            )
        execution_db.save(conn, execution.id, state, now)
        self._audit_changes(conn, execution, state, now)

    def _audit_changes(
        self, conn: sqlite3.Connection, execution: Execution, state: ExecutionState, now: str
    ) -> None:
        before = execution.state.nodes
        for node_id, result in state.nodes.items():
            old = before.get(node_id)
            if old is not None and old.status == result.status:
                continue
            data = {k: v for k, v in result.to_json().items() if k != "started_at"}
            execution_db.audit(
                conn,
                f"automation_node_{result.status}",
                execution,
                "runner",
                now,
                node=node_id,
                **data,
            )
        if state.status != execution.state.status and state.finished_at is not None:
            execution_db.audit(
                conn,
                "automation_execution_finished",
                execution,
                "runner",
                now,
                status=state.status,
                error=state.error,
            )
