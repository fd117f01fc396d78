"""``operator audit verify``, ``export`` and ``key``: the audit log checked against the signed
checkpoints published outside the database (docs/audit-anchoring.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from operator_core.cli.app import Config, audit_app, get_config, run_sync, with_executor
from operator_core.cli.output import emit
from operator_core.cli.parsing import MAX_ID
from operator_core.errors import ConfigError, OperatorError
from operator_core.safe_text import visible

if TYPE_CHECKING:
    import sqlite3

    from operator_core.anchor.keys import VerifierKey
    from operator_core.anchor.verify import Report


@contextmanager
def _reading_only() -> Iterator[None]:
    """A command that only reads the log publishes no checkpoint of what it judges."""
    from operator_core.anchor import runtime

    runtime.publishing = False
    try:
        yield
    finally:
        runtime.publishing = True


def _verifier(text: str | None) -> VerifierKey | None:
    """``--key``: a verifier key line or a file holding one; else this machine's key."""
    from operator_core.anchor.keys import VerifierKey, load_signing_key

    if text:
        path = Path(text).expanduser()
        return VerifierKey.parse(path.read_text() if path.is_file() else text)
    signing = load_signing_key(create=False)
    return signing.verifier if signing is not None else None


def _checkpoint_paths(extra: list[Path] | None) -> list[Path]:
    from operator_core.anchor.runtime import checkpoint_file

    default = checkpoint_file()
    return ([default] if default is not None else []) + list(extra or [])


def _anchor_line(report: Report, origin: str, other: int, paths: list[Path]) -> str:
    if report.anchored_to:
        n = report.checkpoints
        text = f"anchored to event {report.anchored_to} by {n} checkpoint{'s' * (n != 1)}"
        a, b = report.anchored_to + 1, report.head_id
        if b > a:
            text += f"; events {a}..{b} not anchored yet"
        elif b == a:
            text += f"; event {b} not anchored yet"
        return text
    where = ", ".join(str(p) for p in paths) or "no checkpoint file"
    text = f"not anchored: no checkpoint of this database ({origin}) in {where}"
    return text + (f" ({other} of other databases)" if other else "")


def _print_report(report: Report, anchor: str, as_json: bool, extra: dict[str, Any]) -> None:
    findings = report.findings.summary()
    if as_json:
        emit({**report.to_json(), "anchor": anchor, **extra})
    else:
        for finding in findings:
            typer.echo(f"{finding.kind}: {visible(finding.message)}")
    if findings:
        # Also with --json: the report on stdout, and the verdict as every error, one line.
        where = "in the report" if as_json else "above"
        more = f" (and {len(findings) - 1} more findings {where})" if len(findings) > 1 else ""
        raise OperatorError(f"audit log TAMPERED: {visible(findings[0].message)}{more}")
    if not as_json:
        typer.echo(f"audit log OK: {report.events} events, chain intact; {anchor}")


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON")] = False,
    ledger: Annotated[
        Path | None, typer.Option("--ledger", help="Check an exported ledger, not the database")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="Verifier key (line or file; default: this machine's key)"),
    ] = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option("--checkpoints", help="More checkpoints (a file, syslog lines); repeatable"),
    ] = None,
    origin: Annotated[
        str | None, typer.Option("--origin", help="The origin this database must have")
    ] = None,
) -> None:
    """Check the audit chain, the signed checkpoints published outside the database and the
    actions' rows against their events; exit 1 on any finding."""
    verifier = _verifier(key)
    if ledger is not None:
        _verify_ledger(ledger, verifier, as_json)
        return
    from operator_core.anchor.check import read_checkpoint_files, verify_with_origin
    from operator_core.anchor.keys import KEY_NAME, VerifierKey
    from operator_core.db.audit import LAST_ID_SQL

    cfg = get_config(ctx)
    paths = _checkpoint_paths(checkpoints)
    found, notes = read_checkpoint_files(paths)
    if verifier is None:
        if found:
            raise ConfigError("checkpoints were found but no audit key: pass --key")
        verifier = VerifierKey(KEY_NAME, bytes(32))  # nothing to check a signature of
    trusted = verifier

    def check(conn: sqlite3.Connection) -> tuple[str, Report, int]:
        return verify_with_origin(conn, found, trusted, origin, LAST_ID_SQL)

    with _reading_only():
        own, report, other = run_sync(
            with_executor(cfg, lambda ex: ex.db.read(check), read_only=True)
        )
    for note in notes:
        typer.echo(f"note: {visible(note)}", err=as_json)
    anchor = _anchor_line(report, own, other, paths)
    _print_report(report, anchor, as_json, {"origin": own})


def _verify_ledger(path: Path, key: VerifierKey | None, as_json: bool) -> None:
    from operator_core.anchor.ledger import verify_ledger_file

    try:
        report = verify_ledger_file(path, key)
    except OSError as exc:
        raise ConfigError(f"cannot read ledger {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not a readable ledger: {exc}") from exc
    trust = "" if key is not None else " (checked with the ledger's own key: pass --key)"
    anchor = (
        f"anchored to event {report.anchored_to}{trust}"
        if report.anchored_to
        else f"no checkpoint in the ledger anchors it{trust}"
    )
    _print_report(report, anchor, as_json, {"ledger": str(path)})


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="The ledger file to write")],
    first: Annotated[int, typer.Option("--from", min=1, max=MAX_ID, help="First event id")] = 1,
    last: Annotated[
        int | None,
        typer.Option("--to", min=1, max=MAX_ID, help="Last event id (default: newest)"),
    ] = None,
) -> None:
    """Write events and the checkpoints covering them as a signed ledger that
    ``audit verify --ledger`` checks without the database."""
    from operator_core.anchor.check import export_database, read_checkpoint_files
    from operator_core.anchor.keys import load_signing_key

    cfg = get_config(ctx)
    signing = load_signing_key()
    assert signing is not None
    found, _ = read_checkpoint_files(_checkpoint_paths(None))

    def export(conn: sqlite3.Connection) -> tuple[int, int, int]:
        return export_database(conn, out, signing, found, first, last)

    try:
        with _reading_only():
            a, b, n = run_sync(with_executor(cfg, lambda ex: ex.db.read(export), read_only=True))
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from exc
    typer.echo(f"exported events {a}..{b} ({n} events) to {visible(str(out))}")


@audit_app.command("key")
def audit_key(ctx: typer.Context) -> None:
    """Print the public key that verifies this machine's checkpoints (give it to verifiers),
    and the database's origin if it exists."""
    from operator_core.anchor.chain import read_origin
    from operator_core.anchor.keys import load_signing_key

    signing = load_signing_key()
    assert signing is not None
    typer.echo(signing.verifier.vkey())
    cfg: Config = get_config(ctx)
    if cfg.target.url is not None or cfg.db.exists():
        with _reading_only():
            found = run_sync(with_executor(cfg, lambda ex: ex.db.read(read_origin), read_only=True))
        if found:
            typer.echo(f"origin {found}")
