"""``operator run``, ``tui`` and ``demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from operator_core.cli.app import Config, app, get_config, run_sync, state_dir, with_executor
from operator_core.cli.parsing import check_number
from operator_core.errors import ValidationError
from operator_core.safe_text import visible

if TYPE_CHECKING:
    # Only for types: pydantic is imported where used (see cli/app.py).
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.subject import Subject


EXIT_FAILED = 3
"""``run --until-idle`` exit code when an action it ran failed for good (1 is an error that
stopped the runner, 2 a usage error; README "Exit codes")."""


@app.command()
def run(
    ctx: typer.Context,
    until_idle: Annotated[
        bool,
        typer.Option(
            "--until-idle",
            help="Exit once nothing is executing or due; exit 3 if an action failed for good",
        ),
    ] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=10_000)] = 4,
    lease_seconds: Annotated[float, typer.Option("--lease-seconds", min=1.0)] = 30.0,
    grace_seconds: Annotated[float, typer.Option("--grace-seconds", min=0.0)] = 10.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log only warnings, not each attempt")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also log when each attempt starts")
    ] = False,
) -> None:
    """Run the runner: execute approved, due work until stopped (SIGINT/SIGTERM). It logs
    one line per attempt on stderr."""
    import asyncio
    import logging
    import signal

    from operator_core.cli.run_report import Outcomes, log_to_stderr, outcomes
    from operator_core.runner import Runner

    cfg = get_config(ctx)
    check_number(lease_seconds, "--lease-seconds", 1, 86400)
    check_number(grace_seconds, "--grace-seconds", 0, 86400)
    if quiet and verbose:
        raise ValidationError("--quiet and --verbose: give one of them", "quiet")
    log_to_stderr(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)

    async def go(ex: ActionExecutor) -> Outcomes:
        runner = Runner(
            ex, concurrency=concurrency, lease_seconds=lease_seconds, grace_seconds=grace_seconds
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runner.request_stop)
        if not until_idle and not quiet:
            typer.echo(
                f"runner {visible(runner.runner_id)} on {visible(cfg.target.display)} "
                f"(concurrency {concurrency})",
                err=True,
            )
        stats = await runner.run(until_idle=until_idle)
        return await outcomes(ex, stats.actions | set(stats.recovered), len(stats.recovered))

    done = run_sync(with_executor(cfg, go, with_subject=True, create=True, seed_policy=True))
    typer.echo(f"runner done: {done.summary()}", err=True)
    if until_idle and done.failed:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def tui(
    ctx: typer.Context,
    read_only: Annotated[bool, typer.Option("--read-only", help="Disable every mutation")] = False,
) -> None:
    """Open the dashboard."""
    cfg = get_config(ctx)
    _open_db_or_fail(cfg)
    from operator_tui import load_app

    def subject() -> Subject:
        # After the first frame (a subject's module and definitions import pydantic); a
        # bad --subject ends the dashboard with its one-line error.
        from operator_core.subjects.loader import load_subject

        return load_subject(cfg.subject_spec)

    tui_app = load_app()(
        cfg.target,
        read_only=read_only,
        approval_mode=cfg.approval_mode,
        actor=cfg.actor,
        subject_loader=subject,
    )
    tui_app.run()
    if tui_app.return_code:
        raise typer.Exit(tui_app.return_code)


def _open_db_or_fail(cfg: Config) -> None:
    """Surface a missing, locked, corrupt or too-new database (on PostgreSQL also an
    unreachable server, bad credentials, a database without Operator's schema) as one line
    before a screen opens (through the store alone: the executor's imports come after the
    first frame)."""
    from operator_core.db.actions import ActionDB

    if cfg.target.url is not None:
        from operator_core.db.pg.store import PgActionDB

        url = cfg.target.url

        async def check_pg() -> None:
            db = PgActionDB(url, create=False, read_only=True)
            try:
                await db.open()
            finally:
                await db.close()

        run_sync(check_pg())
        return
    cfg.require_db()

    async def check() -> None:
        async with ActionDB(cfg.db) as db:
            await db.data_version()

    run_sync(check())


@app.command()
def demo(
    ctx: typer.Context,
    headless: Annotated[
        bool, typer.Option("--headless", help="No screen; print a summary")
    ] = False,
    duration: Annotated[float, typer.Option("--duration", help="Seconds (headless)")] = 30.0,
    speed: Annotated[float, typer.Option("--speed", help="Simulation speed factor")] = 1.0,
    reset: Annotated[bool, typer.Option("--reset", help="Wipe an existing --db first")] = False,
) -> None:
    """The demo: simulated cluster, agent, runner and dashboard on a fresh database."""
    from operator_core.demo import prepare_demo_db, run_demo

    cfg = get_config(ctx)
    check_number(duration, "--duration", 0, 7 * 86400, above=True)
    check_number(speed, "--speed", 0, 1000, above=True)
    db = cfg.db if cfg.db_explicit else state_dir() / "demo.db"
    prepare_demo_db(db, wipe=reset or not cfg.db_explicit)
    if headless:
        summary = run_sync(
            run_demo(db, duration=duration, speed=speed, approval_mode=cfg.approval_mode)
        )
        typer.echo("\n".join(visible(line) for line in summary.splitlines()))
        return
    from operator_tui import load_app

    from operator_core.demo import demo_background

    subject, background = demo_background(db, speed=speed, approval_mode=cfg.approval_mode)
    tui_app = load_app()(
        db, subject=subject, background=background, approval_mode=cfg.approval_mode, actor=cfg.actor
    )
    tui_app.run()
    if tui_app.return_code:
        raise typer.Exit(tui_app.return_code)
