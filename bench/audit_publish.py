"""``python -m bench.audit_publish [--events N] [--runs R]``

What checkpointing costs the audit writer: appends (one event per committed transaction,
the real schema, WAL, synchronous=NORMAL like the engine) with and without a running
Publisher that every commit reports to (a file sink; a checkpoint every 1,000 events,
every second, and at once after every 50th event, an "approved"). Prints appends/s for
both and the ratio. Figures only: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from operator_core.anchor.keys import load_signing_key
from operator_core.anchor.publisher import Publisher
from operator_core.anchor.sinks import FileSink, read_file
from operator_core.anchor.verify import GENESIS_HASH, event_hash
from operator_core.db.schema import migrate

INSERT = (
    "INSERT INTO action_audit_log (proposal_id, event_type, event_data, actor, timestamp, "
    "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def appends(path: Path, events: int, publisher: Publisher | None) -> float:
    """Appends per second, each its own transaction, reported to ``publisher`` if any."""
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path))
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    prev = GENESIS_HASH
    started = time.perf_counter()
    for i in range(1, events + 1):
        kind = "approved" if i % 50 == 0 else "completed"
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        digest = event_hash(prev, i, None, kind, '{"attempt":1}', "runner", stamp)
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(INSERT, (i, kind, '{"attempt":1}', "runner", stamp, prev, digest))
        conn.execute("COMMIT")
        prev = digest
        if publisher is not None:
            publisher.observe(cur.lastrowid or i, digest, (kind,))
    elapsed = time.perf_counter() - started
    conn.close()
    return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key = load_signing_key(Path(tmp) / "audit.key")
        assert key is not None
        for run in range(1, args.runs + 1):
            sink = FileSink(tmp, f"checkpoints{run}.log")
            pub = Publisher(key, "operator/bench", [sink], every_events=1000, every_seconds=1.0)
            # Alternate which goes first: this machine's speed drifts within a run.
            if run % 2:
                plain = appends(Path(tmp) / f"plain{run}.db", args.events, None)
            pub.start()
            with_pub = appends(Path(tmp) / f"pub{run}.db", args.events, pub)
            pub.stop()
            if not run % 2:
                plain = appends(Path(tmp) / f"plain{run}.db", args.events, None)
            published = len(read_file(sink.path).checkpoints)
            print(
                f"run {run}: {plain:,.0f} appends/s plain, {with_pub:,.0f} with the publisher "
                f"({published} checkpoints): ratio {with_pub / plain:.3f}"
            )


if __name__ == "__main__":
    main()
