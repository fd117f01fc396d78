"""The state tables against the audit events: a proposal row says what happened to an action
(approved by whom, rejected, finished), and the events must say the same, with the same
actor and the same parameters. Once the chain is anchored, the events are the record; a row
that disagrees was changed behind the writer's back.

Streaming: proposals and their events are read in proposal order (a merge join), so memory
holds one action's events and the workflows' decisions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from typing import Any, NamedTuple

from operator_core.anchor.chain import parameters_sha256 as params_sha256
from operator_core.anchor.findings import Finding, Findings
from operator_core.identity import actor_text

# Every action, in id order, in ProposalRow's column order (the primary key).
PROPOSALS_SQL = (
    "SELECT id, workflow_id, status, parameters, approved_at, approved_by, approved_identity, "
    "rejected_at, rejected_by, rejected_identity FROM action_proposals ORDER BY id"
)
# Each action's events, action by action, oldest first (walks idx_audit_proposal).
PROPOSAL_EVENTS_SQL = (
    "SELECT proposal_id, id, event_type, actor, event_data FROM action_audit_log "
    "WHERE proposal_id IS NOT NULL ORDER BY proposal_id, id"
)
# The decisions on whole workflows, which approve or reject their steps.
WORKFLOW_DECISIONS_SQL = (
    "SELECT workflow_id, id, event_type, actor, event_data FROM action_audit_log "
    "WHERE proposal_id IS NULL "
    "AND workflow_id IS NOT NULL AND event_type IN ('workflow_approved', 'workflow_rejected') "
    "ORDER BY id"
)

# The status each event leaves an action in (a rejected action is cancelled; a retry waits
# as failed; an interrupted attempt goes back to validated). Other events (proposed,
# validated, cancel_requested, ...) leave the status as it was.
_ENDS = {
    "execution_started": "executing",
    "interrupted": "validated",
    "retry_scheduled": "failed",
    "rejected": "cancelled",
    "cancelled": "cancelled",
    "expired": "cancelled",
    "completed": "completed",
    "failed": "failed",
    "retry_exhausted": "failed",
}
CHECKED = frozenset({"completed", "failed", "cancelled"})


class ProposalRow(NamedTuple):
    id: int
    workflow_id: int | None
    status: str
    parameters: str
    approved_at: str | None
    approved_by: str | None
    approved_identity: str | None
    rejected_at: str | None
    rejected_by: str | None
    rejected_identity: str | None


class Decision(NamedTuple):
    """A decision on a whole workflow; ``steps``: each step's parameters' hash, as approved."""

    id: int
    kind: str
    actor: str
    steps: dict[str, str]


def _step_digests(event_data: str) -> dict[str, str]:
    try:
        value = json.loads(event_data).get("parameters_sha256")
    except (ValueError, AttributeError):
        return {}
    return value if isinstance(value, dict) else {}


class Event(NamedTuple):
    proposal_id: int
    id: int
    event_type: str
    actor: str
    event_data: str


def _shown(label: str | None, identity: str | None) -> str:
    return actor_text(label, identity) if identity else (label or "")


def _data(event: Event) -> dict[str, Any]:
    try:
        value = json.loads(event.event_data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def cross_check(
    proposals: Iterable[Sequence[Any]],
    events: Iterable[Sequence[Any]],
    workflow_decisions: Iterable[Sequence[Any]] = (),
) -> Findings:
    """Check every action row against its events (rows in the SQL constants' column order).
    A finding for each row that disagrees and for events about an action with no row."""
    out = Findings()
    decisions: dict[int, list[Decision]] = {}
    for workflow_id, event_id, kind, actor, *data in workflow_decisions:
        steps = _step_digests(data[0]) if data else {}
        decisions.setdefault(workflow_id, []).append(Decision(event_id, kind, actor, steps))
    for row, evs in _joined(proposals, events, out):
        for finding in check_action(row, evs, decisions.get(row.workflow_id or -1, [])):
            out.add(finding)
    return out


def _joined(
    proposals: Iterable[Sequence[Any]], events: Iterable[Sequence[Any]], out: Findings
) -> Iterator[tuple[ProposalRow, list[Event]]]:
    """Each proposal row with its events; events about a missing row become findings."""
    groups = groupby((Event(*e) for e in events), key=lambda e: e.proposal_id)
    pending = next(groups, None)
    for raw in proposals:
        row = ProposalRow(*raw)
        while pending is not None and pending[0] < row.id:
            _orphans(pending[0], list(pending[1]), out)
            pending = next(groups, None)
        if pending is not None and pending[0] == row.id:
            yield row, list(pending[1])
            pending = next(groups, None)
        else:
            yield row, []
    while pending is not None:
        _orphans(pending[0], list(pending[1]), out)
        pending = next(groups, None)


def _orphans(proposal_id: int, evs: list[Event], out: Findings) -> None:
    out.add(
        Finding(
            "action_missing",
            f"action {proposal_id} has {len(evs)} audit events (from event {evs[0].id}) but no "
            "row: it was deleted",
            evs[0].id,
            evs[-1].id,
        )
    )


def check_action(
    row: ProposalRow, evs: list[Event], decisions: list[Decision]
) -> Iterator[Finding]:
    """What the events say about one action, against its row."""
    a = f"action {row.id}"
    if not evs:
        yield Finding("unrecorded", f"{a} ({row.status}) has no audit events at all")
        return
    first, last = evs[0].id, evs[-1].id
    proposed = next((e for e in evs if e.event_type == "proposed"), None)
    proposed_data = _data(proposed) if proposed else {}
    yield from _check_parameters(a, row, evs, proposed, proposed_data, decisions)
    ended = [e for e in evs if e.event_type in _ENDS]
    if row.status in CHECKED and not ended:
        yield Finding(
            "unrecorded", f"{a} is {row.status} in the table, but no event made it so", first, last
        )
    elif ended and _ENDS[ended[-1].event_type] != row.status:
        e = ended[-1]
        yield Finding(
            "status_mismatch",
            f"{a} is {row.status} in the table, but event {e.id} ({e.event_type}) left it "
            f"{_ENDS[e.event_type]}",
            e.id,
            e.id,
        )
    yield from _check_rejection(a, row, evs, decisions)
    yield from _check_approval(a, row, evs, decisions, proposed_data)


def _check_parameters(
    a: str,
    row: ProposalRow,
    evs: list[Event],
    proposed: Event | None,
    data: dict[str, Any],
    decisions: list[Decision],
) -> Iterator[Finding]:
    try:
        now = params_sha256(json.loads(row.parameters))
    except ValueError:
        yield Finding("parameters_changed", f"{a}: its parameters are not valid JSON")
        return
    if proposed is None:
        yield Finding("unrecorded", f"{a} has no proposed event", evs[0].id, evs[-1].id)
        return
    recorded = [(proposed.id, params_sha256(data.get("parameters")))]
    for e in evs:
        if e is not proposed and "parameters_sha256" in e.event_data:
            digest = _data(e).get("parameters_sha256")
            if isinstance(digest, str):
                recorded.append((e.id, digest))
    for d in decisions:
        if isinstance(step := d.steps.get(str(row.id)), str):
            recorded.append((d.id, step))
    recorded.sort()
    for event_id, digest in recorded:
        if digest != now:
            yield Finding(
                "parameters_changed",
                f"{a}: its parameters (sha256 {now[:12]}) differ from those in event "
                f"{event_id} (sha256 {digest[:12]})",
                event_id,
                event_id,
            )
            return


def _check_rejection(
    a: str, row: ProposalRow, evs: list[Event], decisions: list[Decision]
) -> Iterator[Finding]:
    rejections = [(e.id, e.actor) for e in evs if e.event_type == "rejected"]
    rejections += [(d.id, d.actor) for d in decisions if d.kind == "workflow_rejected"]
    if row.rejected_at is None:
        if rejections:
            event_id, actor = rejections[-1]
            yield Finding(
                "status_mismatch",
                f"{a} is not rejected in the table, but event {event_id} rejected it ({actor!r})",
                event_id,
                event_id,
            )
        return
    want = _shown(row.rejected_by, row.rejected_identity)
    if not rejections:
        yield Finding(
            "unrecorded",
            f"{a} is marked rejected by {want!r}, but no event rejected it",
            evs[0].id,
            evs[-1].id,
        )
    elif all(actor != want for _, actor in rejections):
        event_id, actor = rejections[-1]
        yield Finding(
            "actor_mismatch",
            f"{a} was rejected by {actor!r} (event {event_id}), the table says {want!r}",
            event_id,
            event_id,
        )


def _check_approval(
    a: str,
    row: ProposalRow,
    evs: list[Event],
    decisions: list[Decision],
    proposed_data: dict[str, Any],
) -> Iterator[Finding]:
    approvals = [(e.id, e.actor) for e in evs if e.event_type == "approved"]
    approvals += [(d.id, d.actor) for d in decisions if d.kind == "workflow_approved"]
    if row.approved_at is not None:
        want = _shown(row.approved_by, row.approved_identity)
        if not approvals:
            yield Finding(
                "unrecorded",
                f"{a} is marked approved by {want!r}, but no event approved it",
                evs[0].id,
                evs[-1].id,
            )
        elif all(actor != want for _, actor in approvals):
            event_id, actor = approvals[-1]
            yield Finding(
                "actor_mismatch",
                f"{a} was approved by {actor!r} (event {event_id}), the table says {want!r}",
                event_id,
                event_id,
            )
    ran = any(e.event_type == "execution_started" for e in evs)
    if ran and proposed_data.get("requires_approval") and not approvals:
        yield Finding(
            "unapproved_execution",
            f"{a} needed approval and ran, but no event approved it",
            evs[0].id,
            evs[-1].id,
        )
