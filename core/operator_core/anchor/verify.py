"""Verify the audit chain against published checkpoints, streaming (one pass, memory for
the checkpoints only).

The chain alone proves nothing to someone who can rewrite the file and recompute every
hash; a checkpoint signed outside the database pins event ``size`` to ``head`` as of its
time. So each checkpoint must find, at its sequence number, an event with its hash; events
appended after the last checkpoint must not be dated before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from operator_core.anchor.chain import GENESIS_HASH, event_hash
from operator_core.anchor.checkpoint import Checkpoint, SignedCheckpoint
from operator_core.anchor.findings import Finding, Findings
from operator_core.anchor.keys import VerifierKey

# Every event, oldest first, in the column order verify_events reads; walks the primary key.
EVENTS_SQL = (
    "SELECT id, proposal_id, workflow_id, event_type, event_data, actor, timestamp, "
    "prev_hash, hash FROM action_audit_log ORDER BY id"
)
# The events from id :first to :last, for an export.
EVENTS_RANGE_SQL = (
    "SELECT id, proposal_id, workflow_id, event_type, event_data, actor, timestamp, "
    "prev_hash, hash FROM action_audit_log WHERE id BETWEEN :first AND :last ORDER BY id"
)
# The highest id ever handed out (deleted rows leave it behind unless someone fixes it).
SEQUENCE_SQL = "SELECT seq FROM sqlite_sequence WHERE name = 'action_audit_log'"


@dataclass
class Report:
    """What a verification saw: events walked, the last one, the last checkpoint that
    matched (events after it are not anchored yet), and the findings."""

    events: int = 0
    head_id: int = 0
    head_hash: str = GENESIS_HASH
    checkpoints: int = 0
    anchored_to: int = 0
    findings: Findings = field(default_factory=Findings)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "checkpoints": self.checkpoints,
            "anchored_to": self.anchored_to,
            "findings": [f.to_json() for f in self.findings.summary()],
        }


def _label(n: int, cp: Checkpoint) -> str:
    return f"checkpoint {n} at {cp.short_time()}"


def usable_checkpoints(
    signed: Iterable[SignedCheckpoint], key: VerifierKey, origin: str, findings: Findings
) -> list[tuple[int, Checkpoint]]:
    """The checkpoints for ``origin`` that ``key`` signed, numbered from 1 in the order
    given, sorted by sequence; a finding for each that is not, and for two that disagree."""
    kept: dict[int, tuple[int, Checkpoint]] = {}
    for n, s in enumerate(signed, 1):
        cp = s.checkpoint
        if cp.origin != origin:
            findings.add(
                Finding(
                    "foreign_checkpoint",
                    f"{_label(n, cp)} is for {cp.origin!r}, not this database ({origin!r})",
                    cp.size,
                    cp.size,
                    n,
                )
            )
        elif not s.verified_by(key):
            findings.add(
                Finding(
                    "bad_signature",
                    f"{_label(n, cp)} (event {cp.size}) is not signed by key {key.vkey()[:40]}",
                    cp.size,
                    cp.size,
                    n,
                )
            )
        elif cp.size in kept and kept[cp.size][1].head != cp.head:
            m = kept[cp.size][0]
            findings.add(
                Finding(
                    "forked",
                    f"checkpoints {m} and {n} disagree on event {cp.size}: the log was "
                    f"rewritten and checkpointed again",
                    cp.size,
                    cp.size,
                    n,
                )
            )
        else:
            kept.setdefault(cp.size, (n, cp))
    return sorted(kept.values(), key=lambda item: item[1].size)


def verify_events(
    rows: Iterable[Sequence[Any]],
    checkpoints: Iterable[SignedCheckpoint],
    key: VerifierKey,
    origin: str,
    sequence: int | None = None,
    skew: float = 10.0,
    first_prev: str = GENESIS_HASH,
    first_id: int = 1,
) -> Report:
    """Walk ``rows`` (EVENTS_SQL's columns, by id) once, checking the chain and every usable
    checkpoint. ``sequence``: the highest id the log ever gave (sqlite_sequence,
    audit_sequence), if known. ``skew``: how far an event
    may be dated before a checkpoint that does not cover it (clocks of two writers).
    ``first_prev``/``first_id``: where the rows start (an export starts mid-chain)."""
    report = Report()
    signed = list(checkpoints)
    report.checkpoints = len(signed)
    pending = usable_checkpoints(signed, key, origin, report.findings)
    walk(report, rows, pending, pending, skew, first_prev, first_id)
    check_tail(report, pending, sequence)
    return report


def _floor(cp: Checkpoint, skew: float) -> str:
    return (cp.time - timedelta(seconds=skew)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def walk(
    report: Report,
    rows: Iterable[Sequence[Any]],
    pending: list[tuple[int, Checkpoint]],
    known: list[tuple[int, Checkpoint]],
    skew: float,
    first_prev: str,
    first_id: int,
    before: tuple[int, Checkpoint] | None = None,
) -> None:
    """The pass itself, over rows from ``first_id`` on: checks the checkpoints in
    ``pending`` (sorted by sequence); ``known``, every usable checkpoint, finds renumbered
    events; ``before``, the last checkpoint below ``first_id``, if rows start mid-chain."""
    out = report.findings
    by_hash = {cp.head: (n, cp) for n, cp in known}
    i, n_cps = 0, len(pending)
    next_size = pending[0][1].size if pending else -1
    # Events after a checkpoint may not be dated before it (less the skew allowed).
    floor, floor_cp = "", 0
    good = first_id - 1  # the last event a checkpoint vouched for
    if before is not None:
        floor, floor_cp, good = _floor(before[1], skew), before[0], before[1].size
    prev, expected = first_prev, first_id
    pprev = last_prev_hash = ""  # the link before, and the last row's own prev_hash
    digest_for_next = ""
    seen = 0
    last_id = first_id - 1
    for row in rows:
        id_, pid, wid, etype, data, actor, ts, prev_hash, digest = row
        if id_ != expected:
            if id_ > expected:
                out.add(
                    Finding("gap", f"events {expected}..{id_ - 1} are missing", expected, id_ - 1)
                )
            else:
                out.add(Finding("renumbered", f"event {id_} is out of order", id_, id_))
        if prev_hash != prev:
            if prev_hash == pprev and last_prev_hash == digest:
                # Each of the two links to the other's predecessor: the rows traded places.
                out.add(
                    Finding("swapped", f"events {id_ - 1} and {id_} were swapped", id_ - 1, id_)
                )
                # The pair ends with the hash its first row has: the next row links to it.
                digest_for_next = prev
            else:
                out.add(
                    Finding(
                        "chain_broken",
                        f"event {id_}: prev_hash is not the hash of the event before it",
                        id_,
                        id_,
                    )
                )
        if event_hash(prev_hash, pid, wid, etype, data, actor, ts) != digest:
            out.add(
                Finding(
                    "altered",
                    f"event {id_} was altered: its contents do not match its hash",
                    id_,
                    id_,
                )
            )
        if ts < floor:
            out.add(
                Finding(
                    "backdated",
                    f"event {id_} is dated {ts}, before checkpoint {floor_cp} that ends "
                    f"before it: it was appended later and backdated",
                    id_,
                    id_,
                    floor_cp,
                )
            )
        while next_size != -1 and next_size <= id_:
            n, cp = pending[i]
            if cp.size < id_:
                out.add(
                    Finding(
                        "truncated",
                        f"events {expected}..{id_ - 1} are missing: {_label(n, cp)} saw "
                        f"event {cp.size}",
                        expected,
                        id_ - 1,
                        n,
                    )
                )
            elif cp.head == digest:
                good = id_
                report.anchored_to = id_
            else:
                out.add(
                    Finding(
                        "rewritten",
                        f"events {good + 1}..{id_} were rewritten (edited, forged, removed or "
                        f"reordered): {_label(n, cp)} saw another event {id_} (head "
                        f"{cp.head[:12]}, now {digest[:12]})",
                        good + 1,
                        id_,
                        n,
                    )
                )
                good = id_
            floor, floor_cp = _floor(cp, skew), n
            i += 1
            next_size = pending[i][1].size if i < n_cps else -1
        if digest in by_hash:
            n, cp = by_hash[digest]
            if cp.size != id_:
                out.add(
                    Finding(
                        "renumbered",
                        f"event {id_} is the event {_label(n, cp)} saw as event {cp.size}: "
                        f"events were renumbered",
                        min(id_, cp.size),
                        max(id_, cp.size),
                        n,
                    )
                )
        pprev, last_prev_hash, prev = prev, prev_hash, digest_for_next or digest
        digest_for_next = ""
        expected = id_ + 1
        last_id = id_
        seen += 1
    report.events += seen
    report.head_id = last_id
    report.head_hash = prev


def check_tail(report: Report, pending: list[tuple[int, Checkpoint]], sequence: int | None) -> None:
    """Checkpoints past the last event, or checkpointed events a gap removed: truncation
    (the sequence still remembers them) or rollback (an older file, or a fixed sequence)."""
    out = report.findings
    last_id = report.head_id
    beyond = [(n, cp) for n, cp in pending if cp.size > last_id]
    if beyond:
        n, cp = beyond[-1]
        missing = f"events {last_id + 1}..{cp.size} are missing: {_label(n, cp)} saw them"
        if sequence is not None and sequence >= cp.size:
            out.add(Finding("truncated", missing, last_id + 1, cp.size, n))
        else:
            out.add(
                Finding(
                    "rollback",
                    f"{missing}; the database ends at event {last_id} (an older copy of "
                    "the database, or its tail deleted and its id counter set back)",
                    last_id + 1,
                    cp.size,
                    n,
                )
            )
    elif sequence is not None and sequence > last_id:
        out.add(
            Finding(
                "truncated",
                f"events {last_id + 1}..{sequence} are missing (the log's id counter remembers "
                "them)",
                last_id + 1,
                sequence,
            )
        )
