"""``operator migrate``: create the database, or bring its schema to this version.

Every command that writes does the same on first use; this one does only that, so a team
can prepare a PostgreSQL database (or upgrade one) before any runner starts on it.
"""

from __future__ import annotations

from pathlib import Path

import typer

from operator_core.cli.app import app, get_config, run_sync


def _sqlite_version(path: Path) -> int | None:
    """The file's schema version before we touch it, if it is a readable SQLite file."""
    import sqlite3

    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # the Store says what is wrong with it, in one line


async def _migrate_sqlite(path: Path) -> int:
    from operator_core.db.connection import Store

    store = Store(path)
    try:
        await store.open()  # migrates
        return await store.read(lambda conn: int(conn.execute("PRAGMA user_version").fetchone()[0]))
    finally:
        await store.close()


async def _migrate_postgres(url: str) -> tuple[int | None, int]:
    from operator_core.db.pg.connection import PgDatabase

    db = PgDatabase(url)
    try:
        return await db.migrate()
    finally:
        await db.close()


@app.command("migrate")
def migrate(ctx: typer.Context) -> None:
    """Create the database or bring its schema to this version (also done on first use)."""
    cfg = get_config(ctx)
    target = cfg.target
    if target.url is not None:
        before, after = run_sync(_migrate_postgres(target.url))
    else:
        cfg.check_creatable()
        before = _sqlite_version(cfg.db)
        after = run_sync(_migrate_sqlite(cfg.db))
    if before is None:
        done = "created"
    elif before == after:
        done = "already current"
    else:
        done = f"migrated from version {before}"
    typer.echo(f"{target.display}: schema version {after} ({done})")
