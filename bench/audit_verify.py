"""``python -m bench.audit_verify [--events N] [--every K] [--keep FILE]``

Builds a real SQLite file with N audit events (the real schema, a checkpoint every K
events, as the publisher would sign them), then times verifying it (the chain, every
checkpoint's signature and head) in one process (``verify_events``) and sharded over the
cores (``parallel.verify_file``). Prints events/s. Figures only: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from operator_core.anchor.checkpoint import Checkpoint, SignedCheckpoint, sign
from operator_core.anchor.keys import SigningKey, load_signing_key
from operator_core.anchor.parallel import verify_file
from operator_core.anchor.verify import EVENTS_SQL, GENESIS_HASH, SEQUENCE_SQL, event_hash
from operator_core.anchor.verify import verify_events as verify
from operator_core.db.schema import migrate

ORIGIN = "operator/bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build(path: Path, events: int, every: int, key: SigningKey) -> list[SignedCheckpoint]:
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path))
    conn.execute("PRAGMA journal_mode = WAL")
    prev = GENESIS_HASH
    cps: list[SignedCheckpoint] = []
    conn.execute("BEGIN")
    batch = []
    for i in range(1, events + 1):
        when = T0 + timedelta(milliseconds=i)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data = json.dumps({"attempt": 1, "runner": "r1"}, separators=(",", ":"))
        pid = i // 4 + 1
        digest = event_hash(prev, pid, None, "completed", data, "runner", stamp)
        batch.append((pid, "completed", data, "runner", stamp, prev, digest))
        prev = digest
        if i % every == 0:
            cps.append(sign(Checkpoint(ORIGIN, i, digest, when + timedelta(seconds=1)), key))
        if len(batch) == 10_000:
            conn.executemany(
                "INSERT INTO action_audit_log (proposal_id, event_type, event_data, actor, "
                "timestamp, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
            batch.clear()
    if batch:
        conn.executemany(
            "INSERT INTO action_audit_log (proposal_id, event_type, event_data, actor, "
            "timestamp, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return cps


def checkpoints_of(path: Path, every: int, key: SigningKey) -> list[SignedCheckpoint]:
    """Checkpoints of an existing bench file, every ``every`` events."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT id, hash, timestamp FROM action_audit_log WHERE id % ? = 0 ORDER BY id", (every,)
    ).fetchall()
    conn.close()
    return [
        sign(Checkpoint(ORIGIN, i, h, datetime.fromisoformat(t) + timedelta(seconds=1)), key)
        for i, h, t in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, help="processes for the sharded run (cores)")
    parser.add_argument("--keep", type=Path, help="build the database in this file")
    parser.add_argument("--reuse", action="store_true", help="reuse the --keep file as is")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key = load_signing_key(Path(tmp) / "audit.key")
        assert key is not None
        path = args.keep or Path(tmp) / "audit.db"
        started = time.perf_counter()
        if args.reuse and args.keep and path.exists():
            cps = checkpoints_of(path, args.every, key)
        else:
            path.unlink(missing_ok=True)
            Path(f"{path}-wal").unlink(missing_ok=True)
            cps = build(path, args.events, args.every, key)
        print(
            f"built {args.events:,} events, {len(cps):,} checkpoints in "
            f"{time.perf_counter() - started:.1f}s ({path.stat().st_size / 2**20:.0f} MiB)"
        )
        for run in range(args.runs):
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            started = time.perf_counter()
            cpu = time.process_time()
            seq = conn.execute(SEQUENCE_SQL).fetchone()
            report = verify(conn.execute(EVENTS_SQL), cps, key.verifier, ORIGIN, seq[0])
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            conn.close()
            assert report.ok and report.anchored_to == args.events - args.events % args.every
            print(
                f"run {run + 1}: verified {report.events:,} events and {len(cps):,} "
                f"checkpoints in {elapsed:.2f}s: {report.events / elapsed:,.0f} events/s "
                f"({report.events / cpu:,.0f} per CPU second)"
            )
            started = time.perf_counter()
            report = verify_file(path, cps, key.verifier, ORIGIN, workers=args.workers)
            elapsed = time.perf_counter() - started
            assert report.ok and report.anchored_to == args.events - args.events % args.every
            print(
                f"run {run + 1}: sharded over {args.workers or os.cpu_count()} processes: "
                f"{elapsed:.2f}s, {report.events / elapsed:,.0f} events/s"
            )


if __name__ == "__main__":
    main()
