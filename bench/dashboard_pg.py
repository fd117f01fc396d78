"""The dashboard on PostgreSQL against SQLite, on the same 100,000-action history.

``bench/history.py``'s database (its live edge moved to now) is copied whole into a fresh
PostgreSQL database (``COPY``, ids kept, identities set past them, then ``ANALYZE``), so
both engines hold the same rows. In the same run, interleaved:

- first paint: the real dashboard (``bench.dashboard_app``) in a pseudo-terminal, process
  start → the first frame with data reached the terminal (``bench/dashboard.py``'s method);
- external approval → row gone: another process approves the top row; on PostgreSQL the
  dashboard finds it by the poll of the audit counter (every 0.5 s), on SQLite by a poke;
- snapshot refresh: what one re-read after a change costs, in process
  (``operator_tui.data.load``: every pane's rows, the counts, the new audit events), and the
  idle poll (``data_version``) that decides whether to re-read.

``python -m bench.dashboard_pg [URL]``: URL reaches a database whose user may CREATE DATABASE
(else a throwaway cluster is started, as the tests do). Also ``python -m bench dashboard_pg``.
Figures only.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.common import Figure, compile_bytecode, settle
from bench.dashboard import Dashboard, _kill_leftovers
from bench.history import cached_history, history_db

SIZE = 100_000
REFRESHES = 20
SKIPPED = {"bench_history"}
"""SQLite tables that are the generator's, not Operator's."""
FIRST = ["tickets", "workflows", "automations", "automation_versions", "action_proposals"]
"""Tables others refer to, in the order their foreign keys need."""


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    """A URL whose user may create databases: ``url``, or a throwaway cluster's."""
    if url is not None:
        yield url
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.pgcluster import Cluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL server binaries: give a URL")
    cluster = Cluster(bindir).start()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.stop()


def fresh_database(admin_url: str) -> str:
    import psycopg

    name = f"operator_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def copy_history(sqlite_path: Path, url: str) -> dict[str, int]:
    """Every Operator table's rows from the SQLite file into the migrated PostgreSQL database
    (the one-row tables PostgreSQL seeds are kept); rows copied per table."""
    import psycopg
    from operator_core.db.pg.connection import PgDatabase

    async def migrate() -> None:
        db = PgDatabase(url)
        try:
            await db.open()
        finally:
            await db.close()

    asyncio.run(migrate())
    src = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    copied: dict[str, int] = {}
    with psycopg.connect(url) as dst:
        # Row triggers off while copying (the server's superuser, as the throwaway cluster's):
        # the audit log's id trigger updates its one counter row once per event, which made
        # a copy of 100,000 actions' events take over 15 minutes; the counter is set below.
        dst.execute("SET session_replication_role = replica")
        columns: dict[str, list[str]] = {}
        for table, column in dst.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ):
            columns.setdefault(table, []).append(column)
        tables = sorted(
            (
                r[0]
                for r in src.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ),
            key=lambda t: (FIRST.index(t) if t in FIRST else len(FIRST), t),
        )
        for table in tables:
            if table in SKIPPED or table not in columns:
                continue
            if dst.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:  # type: ignore[index]
                continue  # seeded by the migration (safety_state, policy, audit_origin...)
            mine = [r[1] for r in src.execute(f"PRAGMA table_info({table})")]
            both = [c for c in mine if c in columns[table]]
            names = ", ".join(both)
            n = 0
            with dst.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[arg-type]
                for row in src.execute(f"SELECT {names} FROM {table}"):
                    copy.write_row(row)
                    n += 1
            copied[table] = n
            if "id" in both and n:
                dst.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # type: ignore[arg-type]
                    f"(SELECT MAX(id) FROM {table}))"
                )
        dst.execute(
            "UPDATE audit_sequence SET last_id = (SELECT COALESCE(MAX(id), 0) "
            "FROM action_audit_log) WHERE id = 1"
        )
        dst.commit()
        dst.autocommit = True
        dst.execute("ANALYZE")
    src.close()
    return copied


async def _refresh_costs(target: Path | str) -> tuple[float, float]:
    """Median ms of one dashboard re-read (every pane, counts, new events) and of one idle
    poll of the change counter, on the engine behind ``target``."""
    from operator_core.clock import SYSTEM_CLOCK
    from operator_core.db.audit_view import LAST_ID_SQL
    from operator_core.db.url import parse_target
    from operator_tui.data import load
    from operator_tui.startup import open_db

    db = open_db(parse_target(target), SYSTEM_CLOCK)
    await db.open()
    try:
        last = await db.read(lambda conn: conn.execute(LAST_ID_SQL).fetchone()[0])
        loads, polls = [], []
        await load(db, last)  # warm: the first read pays the statements' preparation
        for _ in range(REFRESHES):
            start = time.perf_counter()
            await load(db, last)
            loads.append(time.perf_counter() - start)
            start = time.perf_counter()
            await db.data_version()
            polls.append(time.perf_counter() - start)
    finally:
        await db.close()
    return statistics.median(loads) * 1000, statistics.median(polls) * 1000


async def _approve(target: Path | str, key: str) -> float:
    """Approve a pane row (``p<id>``/``w<id>``) from this process; its ``approved_at``."""
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry
    from operator_core.clock import SYSTEM_CLOCK
    from operator_core.db.url import NOWHERE, parse_target
    from operator_core.subjects.loader import load_subject
    from operator_tui.startup import open_db

    parsed = parse_target(target)
    db = open_db(parsed, SYSTEM_CLOCK)
    registry = ActionRegistry.from_subject(load_subject("demo"))
    kind, item = key[0], int(key[1:])
    async with ActionExecutor(parsed.path or NOWHERE, registry, db=db) as ex:
        if kind == "w":
            wf = await ex.approve_workflow(item, "bench@other-process")
            return wf.approved_at.timestamp()  # type: ignore[union-attr]
        p = await ex.approve_proposal(item, "bench@other-process")
        return p.approved_at.timestamp()  # type: ignore[union-attr]


def bench(
    runs: int, quick: bool, log: Callable[[str], None] = print, url: str | None = None
) -> list[Figure]:
    group = f"dashboard on PostgreSQL, {SIZE:,} actions (peer: SQLite, same rows)"
    paint = Figure(
        group, "first paint (process start → data on screen)", "ms", peer=[], peer_label="SQLite"
    )
    change = Figure(
        group, "external approval → row gone from the pane", "ms", peer=[], peer_label="SQLite"
    )
    refresh = Figure(
        group, "snapshot refresh (one re-read after a change)", "ms", peer=[], peer_label="SQLite"
    )
    poll = Figure(group, "idle poll of the change counter", "ms", peer=[], peer_label="SQLite")
    compile_bytecode()
    cached_history(SIZE)
    with server(url) as admin, tempfile.TemporaryDirectory(prefix="bench-dashboard-pg-") as tmp:
        try:
            for i in range(runs):
                path = history_db(SIZE, Path(tmp))
                pg = fresh_database(admin)
                try:
                    start = time.monotonic()
                    copied = copy_history(path, pg)
                    log(
                        f"  run {i + 1}/{runs}: copied {sum(copied.values()):,} rows in "
                        f"{time.monotonic() - start:.0f} s"
                    )
                    settle()
                    for target, ours in ((pg, True), (path, False)):
                        dash = Dashboard.launch("operator", target)  # type: ignore[arg-type]
                        shown = dash.wait_event("paint", 120)
                        took = (dash.painted(shown) - dash.started) * 1000
                        (paint.ours if ours else paint.peer).append(took)  # type: ignore[union-attr]
                        if shown.get("first"):
                            time.sleep(0.5)
                            approved = asyncio.run(_approve(target, shown["first"]))
                            gone = dash.wait_event("gone", 30)
                            (change.ours if ours else change.peer).append(
                                (gone["t"] - approved) * 1000
                            )  # type: ignore[union-attr]
                        dash.quit()
                        loaded, polled = asyncio.run(_refresh_costs(target))
                        (refresh.ours if ours else refresh.peer).append(loaded)  # type: ignore[union-attr]
                        (poll.ours if ours else poll.peer).append(polled)  # type: ignore[union-attr]
                    log(
                        f"  run {i + 1}/{runs}: first paint PostgreSQL {paint.ours[-1]:.0f} ms, "
                        f"SQLite {paint.peer[-1]:.0f} ms; refresh {refresh.ours[-1]:.1f} ms vs "  # type: ignore[index]
                        f"{refresh.peer[-1]:.1f} ms"
                    )  # type: ignore[index]
                finally:
                    drop_database(admin, pg)
                    for leftover in path.parent.glob(path.name + "*"):
                        leftover.unlink()
        finally:
            _kill_leftovers()
    return [paint, change, refresh, poll]


def main() -> None:
    from bench.common import summary

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    figures = bench(3, False, log=log, url=sys.argv[1] if len(sys.argv) > 1 else None)
    for f in figures:
        print(f"{f.name}: PostgreSQL {summary(f.ours)} {f.unit}, SQLite {summary(f.peer or [])}")


if __name__ == "__main__":
    main()
