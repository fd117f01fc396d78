"""``operator copy --from sqlite.db --to postgresql://…``: move a whole SQLite database to
PostgreSQL for a team that outgrows one file (db/pg/transfer.py says how, and what it
refuses). Progress lines go to stderr; the summary to stdout (``--json``: as JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from operator_core.cli.app import app
from operator_core.cli.output import emit
from operator_core.db.url import parse_target, redact, scrub
from operator_core.errors import DatabaseError, ValidationError


def _progress(line: str) -> None:
    typer.echo(line, err=True)


@app.command("copy")
def copy(
    source: Annotated[
        str, typer.Option("--from", metavar="PATH", help="The SQLite database to copy (read only)")
    ],
    to: Annotated[
        str, typer.Option("--to", metavar="URL", help="An empty PostgreSQL database's URL")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON")] = False,
) -> None:
    """Copy a whole SQLite database into an empty PostgreSQL one, in one transaction."""
    import sqlite3

    import psycopg

    from operator_core.db.pg.connection import PgDatabase
    from operator_core.db.pg.transfer import CopyReport, copy_into, open_source
    from operator_core.db.pg.txn import BEGIN_WRITE

    if not source.strip() or parse_target(source).is_postgres:
        raise ValidationError("--from must be a SQLite database file", "--from")
    target = parse_target(to) if to.strip() else None
    if target is None or target.url is None:
        raise ValidationError("--to must be a postgresql:// URL", "--to")
    path = Path(source)
    url = target.url
    db = PgDatabase(url)
    display = db.display
    conn = open_source(path)
    report = CopyReport(str(path), display)
    try:
        db.run_txn(BEGIN_WRITE, copy_into, conn, report, _progress, display)
    except psycopg.Error as exc:  # run_txn passes IntegrityError through as it is
        raise DatabaseError(
            f"copy to {redact(url)} failed, nothing was written: {scrub(str(exc), url)}"
        ) from None
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read {path}, nothing was written: {exc}") from None
    except DatabaseError as exc:
        if not str(exc).startswith("database error"):
            raise  # a refusal, or no connection: says so itself
        raise DatabaseError(f"{exc} (the copy was rolled back: nothing was written)") from None
    finally:
        conn.close()
        db.close_sync()
    if as_json:
        emit(report.as_json())
        return
    total = sum(report.rows.values())
    typer.echo(
        f"copied {path} to {display}: {total:,} rows in {report.total_seconds:.2f}s "
        f"(schema version {report.schema_version}; audit: {report.audit_message})"
    )
