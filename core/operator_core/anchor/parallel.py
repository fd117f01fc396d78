"""Verify a large SQLite file on every core: the id range is cut into shards, each walked
by its own process with its own read-only connection, and the reports merged in order.

An event's hash depends only on its own row (its prev_hash is stored), so shards need from
each other only the hash of the row before them, which each reads itself; the checkpoints
are checked once, here, and handed to the shard that holds their sequence number.
"""

from __future__ import annotations

import os
import sqlite3
from bisect import bisect_left
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from operator_core.anchor.checkpoint import Checkpoint, SignedCheckpoint
from operator_core.anchor.findings import Finding
from operator_core.anchor.keys import VerifierKey
from operator_core.anchor.verify import (
    EVENTS_RANGE_SQL,
    GENESIS_HASH,
    SEQUENCE_SQL,
    Report,
    check_tail,
    usable_checkpoints,
    walk,
)

# Below this many events one process is faster than starting others.
MIN_SHARD = 100_000
# The row before a shard: its hash is the shard's first prev_hash (walks the primary key).
PREV_SQL = "SELECT id, hash FROM action_audit_log WHERE id < ? ORDER BY id DESC LIMIT 1"
HEAD_SQL = "SELECT MAX(id) FROM action_audit_log"

Numbered = list[tuple[int, Checkpoint]]


def _connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _shard(
    path: str,
    first: int,
    last: int,
    pending: Numbered,
    known: Numbered,
    before: tuple[int, Checkpoint] | None,
    skew: float,
    is_last: bool,
) -> Report:
    conn = _connect(path)
    try:
        row = conn.execute(PREV_SQL, (first,)).fetchone()
        prev_id, prev = (row[0], row[1]) if row else (0, GENESIS_HASH)
        report = Report()
        rows = conn.execute(EVENTS_RANGE_SQL, {"first": first, "last": last})
        walk(report, rows, pending, known, skew, prev, prev_id + 1, before)
    finally:
        conn.close()
    if not is_last:
        # Checkpointed events this shard should have held but did not reach.
        for n, cp in pending:
            if cp.size > report.head_id:
                report.findings.add(
                    Finding(
                        "truncated",
                        f"event {cp.size} is missing: checkpoint {n} at {cp.short_time()} saw it",
                        cp.size,
                        cp.size,
                        n,
                    )
                )
    return report


def verify_file(
    path: Path | str,
    checkpoints: Iterable[SignedCheckpoint],
    key: VerifierKey,
    origin: str,
    workers: int | None = None,
    skew: float = 10.0,
) -> Report:
    """What ``verify_events`` reports for the file's events (the same findings, but for a
    gap at a shard's edge, which each side names as it sees it), on ``workers`` processes
    (default: one per core)."""
    path = str(path)
    conn = _connect(path)
    try:
        seq = conn.execute(SEQUENCE_SQL).fetchone()
        max_id = conn.execute(HEAD_SQL).fetchone()[0] or 0
    finally:
        conn.close()
    report = Report()
    signed = list(checkpoints)
    report.checkpoints = len(signed)
    usable = usable_checkpoints(signed, key, origin, report.findings)
    sizes = [cp.size for _, cp in usable]
    workers = max(1, min(workers or os.cpu_count() or 1, max_id // MIN_SHARD or 1))
    step = -(-max_id // workers) if max_id else 1
    bounds = [(a, min(a + step - 1, max_id)) for a in range(1, max(max_id, 1) + 1, step)]
    bounds[-1] = (bounds[-1][0], max(bounds[-1][1], sizes[-1] if sizes else 0, max_id))
    jobs = []
    for k, (a, b) in enumerate(bounds):
        lo, hi = bisect_left(sizes, a), bisect_left(sizes, b + 1)
        before = usable[lo - 1] if lo else None
        jobs.append((path, a, b, usable[lo:hi], usable, before, skew, k == len(bounds) - 1))
    if len(jobs) == 1:
        parts = [_shard(*jobs[0])]
    else:
        with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(_shard, *zip(*jobs, strict=True)))
    for part in parts:
        report.events += part.events
        report.findings.merge(part.findings)
        report.anchored_to = max(report.anchored_to, part.anchored_to)
        if part.events:
            report.head_id, report.head_hash = part.head_id, part.head_hash
    check_tail(report, usable, seq[0] if seq else None)
    return report
