"""``operator copy`` of a big SQLite database: ``python -m bench.pg_copy [ACTIONS] [URL]``.

The source is bench/history.py's generated database (default 100,000 actions of history:
proposals, attempts, workflows, tickets and their hash-chained audit events, made by plain
inserts into the real schema). Each run copies it with the real command (a subprocess,
``--json``) into a fresh empty database on the server, then checks the row counts; prints
each table's rows and seconds of the median run and the total. Without a URL a throwaway
cluster is started (tests/support/pgcluster.py). Figures are in docs/postgres.md.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.history import history_db

RUNS = 3
REPO = Path(__file__).resolve().parents[1]


def _copy_once(src: Path, admin_url: str) -> dict[str, Any]:
    name = f"bench_copy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')  # type: ignore[arg-type]
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPERATOR_")}
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [sys.executable, "-m", "operator_core.cli", "copy", "--from", str(src)]
            + ["--to", url, "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary: dict[str, Any] = json.loads(done.stdout)
        summary["cpu"] = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
        with psycopg.connect(url) as conn:
            count = conn.execute("SELECT COUNT(*) FROM action_proposals").fetchone()
        assert count is not None and count[0] == summary["tables"]["action_proposals"]["rows"]
        return summary
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def main(actions: int, url: str | None) -> None:
    cluster = None
    if url is None:
        from tests.support.pgcluster import Cluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL binaries and no URL given")
        cluster = Cluster(bindir).start()
        url = cluster.url("postgres")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = history_db(actions, Path(tmp))
            size = src.stat().st_size
            runs = [_copy_once(src, url) for _ in range(RUNS)]
    finally:
        if cluster is not None:
            cluster.stop()
    runs.sort(key=lambda r: r["seconds"])
    median = runs[len(runs) // 2]
    print(f"source: {actions:,} actions, {size / 1e6:.1f} MB; {RUNS} runs")
    for table, figures in sorted(median["tables"].items(), key=lambda kv: -kv[1]["rows"]):
        if figures["rows"]:
            print(f"  {table:<24} {figures['rows']:>9,} rows  {figures['seconds']:7.2f} s")
    totals = [r["seconds"] for r in runs]
    rows = median["rows"]
    print(f"  {'(audit verify)':<24} {'':>9}       {median['audit']['seconds']:7.2f} s")
    cpu = ", ".join(f"{r['cpu']:.2f}" for r in runs)
    print(f"  copy process CPU (user+sys): {cpu} s")
    print(
        f"copy (one transaction, audit verified): {rows:,} rows, median "
        f"{statistics.median(totals):.2f} s (runs {', '.join(f'{t:.2f}' for t in totals)}), "
        f"{rows / statistics.median(totals):,.0f} rows/s; audit: {median['audit']['message']}"
    )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
        sys.argv[2] if len(sys.argv) > 2 else None,
    )
