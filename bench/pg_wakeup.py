"""Wake-ups across processes, and what NOTIFY costs a write: ``python -m bench.pg_wakeup [URL]``.

(a) The write path: N tiny write transactions through ``PgDatabase.write`` (BEGIN, the
    write lock, one INSERT, COMMIT), one after another from asyncio, with: a plain COMMIT;
    NOTIFY and COMMIT in one round trip (what the engine does) with nobody listening and
    with 4 listening connections draining their notifications; and NOTIFY sent after the
    COMMIT as a round trip of its own (the alternative). Interleaved, median of 5 runs.
(b) Commit on process A → waiter woken on process B: B waits on ``Store.listener()`` (the
    runner's and the dashboard's wake-up) and notes the time of each wake; A makes COMMITS
    changing writes 10–30 ms apart through ``Store.write`` and notes the time before each
    began and after it returned. Latency = B's wake − A's return from the commit (also from
    before it began). On PostgreSQL (LISTEN/NOTIFY) and on SQLite (socket pokes), the same
    harness. One clock: both processes on this host.

Without a URL, a throwaway cluster is started (tests/support/pgcluster.py). Figures and
conclusions are in docs/postgres.md.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from operator_core.db.pg.connection import PgDatabase
from operator_core.db.pg.listen import CHANNEL

from bench.common import percentile

BLOCK = 100
BLOCKS = 15
SERVER_TXNS = 2000
COMMITS = 200
LISTENERS = 4
TABLE = "CREATE TABLE IF NOT EXISTS bench_rows (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)"
TABLE_SQLITE = "CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"
INSERT = "INSERT INTO bench_rows (v) VALUES (?)"
BENCH_DB = "operator_bench_wakeup"


# ---------------------------------------------------------------------- (a) the write path


def _insert(conn: Any, i: int) -> None:
    conn.execute(INSERT, (f"row {i}",))


async def _block(db: PgDatabase, commit: str, after: bool) -> float:
    """ms per transaction over BLOCK write transactions ended by ``commit``."""
    db._commit_notify = commit  # the text that ends a changing write (pg/listen.commit_sql)
    notify = f"NOTIFY {CHANNEL}"
    start = time.perf_counter()
    for i in range(BLOCK):
        await db.write(_insert, i)
        if after:
            await db.call(lambda conn: conn.raw.execute(notify))
    return (time.perf_counter() - start) * 1000 / BLOCK


class _Drains:
    """LISTENERS connections listening and reading their notifications, each on a thread."""

    def __init__(self, url: str) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._drain, args=(url,)) for _ in range(LISTENERS)
        ]

    def _drain(self, url: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=0.2):
                    pass

    def __enter__(self) -> _Drains:
        for t in self._threads:
            t.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


async def _phase(url: str, title: str) -> None:
    """The variants in alternating blocks of BLOCK transactions (load drift on a shared
    machine then hits every variant alike): median and best block, ms per transaction."""
    variants = {
        "COMMIT": ("COMMIT", False),
        "NOTIFY …; COMMIT (one round trip)": (f"NOTIFY {CHANNEL}, 'bench'; COMMIT", False),
        "COMMIT, then NOTIFY (a second round trip)": ("COMMIT", True),
    }
    db = PgDatabase(url)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(BLOCKS):
        for name, (commit, after) in variants.items():
            times[name].append(await _block(db, commit, after))
    await db.close()
    print(f"  {title}")
    for name, runs in times.items():
        print(f"    {name:44} median {statistics.median(runs):6.3f}  best {min(runs):6.3f}")


# A procedure committing in a loop: the server's own cost of a NOTIFY at COMMIT, free of the
# round trips and of the scheduling noise a loaded client adds.
PROCEDURE = f"""
CREATE OR REPLACE PROCEDURE bench_txns(n int, notify bool) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    PERFORM pg_advisory_xact_lock(1);
    INSERT INTO bench_rows (v) VALUES ('x');
    IF notify THEN PERFORM pg_notify('{CHANNEL}', 'abcdef0123456789'); END IF;
    COMMIT;
  END LOOP;
END $$"""


def _server_side(url: str, title: str) -> None:
    times: dict[bool, list[float]] = {False: [], True: []}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PROCEDURE)  # type: ignore[arg-type]
        for _ in range(BLOCKS):
            for notify in (False, True):
                start = time.perf_counter()
                conn.execute("CALL bench_txns(%s, %s)", (SERVER_TXNS, notify))
                times[notify].append((time.perf_counter() - start) * 1e6 / SERVER_TXNS)
    print(f"  server side, {title}, µs per transaction:")
    for notify, runs in times.items():
        name = "INSERT; pg_notify; COMMIT" if notify else "INSERT; COMMIT"
        print(f"    {name:44} median {statistics.median(runs):6.1f}  best {min(runs):6.1f}")


def write_path(url: str) -> None:
    print(f"(a) write transactions, ms each: {BLOCKS} blocks of {BLOCK} per variant")
    asyncio.run(_phase(url, "nobody listening"))
    _server_side(url, "nobody listening")
    with _Drains(url):
        asyncio.run(_phase(url, f"{LISTENERS} connections listening"))
        _server_side(url, f"{LISTENERS} connections listening")


# ---------------------------------------------------------------------- (b) wake latency


def _store(target: str) -> Any:
    if target.startswith("postgresql://"):
        from operator_core.db.pg.store import PgStore

        return PgStore(target)
    from operator_core.db.connection import Store

    return Store(Path(target))


async def _wait(target: str) -> None:
    """Process B: print the time of every wake-up until stdin closes."""
    store = _store(target)
    waiter = store.listener()
    assert waiter.start()
    listening = getattr(waiter, "listening", None)
    if listening is not None:
        await asyncio.to_thread(listening.wait, 10)
        await asyncio.sleep(0.1)
    waiter.event.clear()
    loop = asyncio.get_running_loop()
    closed = loop.run_in_executor(None, sys.stdin.read)
    print("ready", flush=True)
    while not closed.done():
        woke = asyncio.ensure_future(waiter.event.wait())
        await asyncio.wait([woke, closed], return_when=asyncio.FIRST_COMPLETED)
        if woke.done():
            print(time.time_ns(), flush=True)
            waiter.event.clear()
        else:
            woke.cancel()
    waiter.stop()


async def _commits(target: str) -> list[tuple[int, int]]:
    store = _store(target)
    await store.open()
    stamps = []
    for i in range(COMMITS):
        before = time.time_ns()
        await store.write(_insert, i)
        stamps.append((before, time.time_ns()))
        await asyncio.sleep(random.uniform(0.01, 0.03))
    await asyncio.sleep(0.5)
    await store.close()
    return stamps


async def _migrate(target: str) -> None:
    store = _store(target)
    await store.open()
    await store.close()


def latency(name: str, target: str) -> None:
    waiter = subprocess.Popen(
        [sys.executable, "-m", "bench.pg_wakeup", "--wait", target],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert waiter.stdin is not None and waiter.stdout is not None
    assert waiter.stdout.readline().strip() == "ready"
    stamps = asyncio.run(_commits(target))
    waiter.stdin.close()
    wakes = [int(line) for line in waiter.stdout.read().split()]
    waiter.wait(timeout=30)
    after, before, missed = [], [], 0
    for i, (began, done) in enumerate(stamps):
        end = stamps[i + 1][0] if i + 1 < len(stamps) else float("inf")
        woke = next((w for w in wakes if began <= w < end), None)
        if woke is None:
            missed += 1
            continue
        after.append((woke - done) / 1e6)
        before.append((woke - began) / 1e6)
    print(f"(b) {name}: {COMMITS} commits, {missed} without a wake before the next")
    for label, values in (("from commit returned", after), ("from write begun", before)):
        print(
            f"  {label:22} median {statistics.median(values):6.3f} ms  "
            f"p99 {percentile(values, 99):6.3f} ms  max {max(values):6.3f} ms"
        )


def main(url: str | None) -> None:
    cluster = None
    if url is None:
        from tests.support.pgcluster import Cluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            sys.exit("no PostgreSQL server binaries: give a URL")
        cluster = Cluster(bindir).start()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
        url = cluster.url(BENCH_DB)
    try:
        asyncio.run(_migrate(url))  # the Operator schema, for Store
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(TABLE)
        write_path(url)
        latency("PostgreSQL, LISTEN/NOTIFY", url)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            import sqlite3

            asyncio.run(_migrate(str(path)))
            with sqlite3.connect(path) as conn:
                conn.execute(TABLE_SQLITE)
            latency("SQLite, socket pokes", str(path))
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--wait"]:
        asyncio.run(_wait(sys.argv[2]))
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else None)
