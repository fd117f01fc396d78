"""Which psycopg API runs the engine's operations: ``python -m bench.pg_driver [URL]``.

Every engine operation is one synchronous function run as one transaction. Two ways to run
N tiny write transactions (BEGIN, the write lock, one INSERT, COMMIT) from asyncio, one
after another, as a runner or the dashboard does:

- ``sync in thread``: a psycopg sync connection owned by one worker thread; each
  transaction is one hop to that thread (PgDatabase, as aiosqlite for SQLite), measured
  both bare and through PgDatabase.write itself (placeholder translation, rows, errors);
- ``async``: psycopg's AsyncConnection, each statement awaited on the event loop.

Without a URL, a throwaway cluster is started (tests/support/pgcluster.py). Prints the
median of 3 runs of each; figures and conclusions are in docs/postgres.md.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from operator_core.db.pg.connection import PgDatabase
from operator_core.db.pg.txn import BEGIN_WRITE

N = 2000
RUNS = 3
TABLE = "CREATE TABLE IF NOT EXISTS bench_rows (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)"
INSERT_PG = "INSERT INTO bench_rows (v) VALUES (%s)"
INSERT_SQLITE_STYLE = "INSERT INTO bench_rows (v) VALUES (?)"


async def sync_in_thread(url: str) -> float:
    conn = psycopg.connect(url, autocommit=True)
    pool = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()

    def txn(i: int) -> None:
        conn.execute(BEGIN_WRITE)
        conn.execute(INSERT_PG, (f"row {i}",))
        conn.execute("COMMIT")

    start = time.perf_counter()
    for i in range(N):
        await loop.run_in_executor(pool, txn, i)
    elapsed = time.perf_counter() - start
    pool.shutdown()
    conn.close()
    return elapsed


async def pg_database(url: str) -> float:
    db = PgDatabase(url)

    def op(conn: Any, i: int) -> None:
        conn.execute(INSERT_SQLITE_STYLE, (f"row {i}",))

    start = time.perf_counter()
    for i in range(N):
        await db.write(op, i)
    elapsed = time.perf_counter() - start
    await db.close()
    return elapsed


async def async_connection(url: str) -> float:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    start = time.perf_counter()
    for i in range(N):
        await conn.execute(BEGIN_WRITE)
        await conn.execute(INSERT_PG, (f"row {i}",))
        await conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    await conn.close()
    return elapsed


VARIANTS = {
    "sync in thread": sync_in_thread,
    "sync in thread (PgDatabase.write)": pg_database,
    "async (AsyncConnection)": async_connection,
}


def main(url: str | None) -> None:
    cluster = None
    if url is None:
        from tests.support.pgcluster import Cluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            sys.exit("no PostgreSQL server binaries: give a URL")
        cluster = Cluster(bindir).start()
        url = cluster.url("postgres")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(TABLE)
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(RUNS):
            for name, variant in VARIANTS.items():  # interleaved: drift hits all alike
                times[name].append(asyncio.run(variant(url)))
        for name, runs in times.items():
            median = statistics.median(runs)
            print(
                f"{name:36} {median * 1000 / N:6.3f} ms/txn  {N / median:7.0f} txn/s  "
                f"(runs: {', '.join(f'{t:.2f}s' for t in runs)})"
            )
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
