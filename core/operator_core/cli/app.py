"""The ``operator`` command's Typer app, its groups, the global options and the
executor each command opens."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from operator_core.cli.parsing import MAX_ID, MAX_LIST, check_label
from operator_core.db.url import NOWHERE, DbTarget, parse_target
from operator_core.env import parse_bool
from operator_core.errors import DatabaseError, ValidationError
from operator_core.identity import actor_text, current_identity

if TYPE_CHECKING:
    # Imported where used: ``operator tui`` draws its first frame before pydantic is
    # imported (the models, the registry, the executor; see operator_tui.app).
    from operator_core.actions.executor import ActionExecutor
    from operator_core.db.reads import Reads


T = TypeVar("T")

IdArg = Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID)]
"""An action's, workflow's or ticket's id: a number SQLite can hold, else a usage error."""
TicketOption = Annotated[
    int | None, typer.Option("--ticket", metavar="ID", min=1, max=MAX_ID, help="Ticket id")
]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=MAX_LIST, help="Most rows")]


def group(help: str, name: str | None = None) -> typer.Typer:
    """A command group. Plain help (no Rich): it prints where it is asked for (a group
    without its command prints its usage on stderr, once), and ``--help`` needs no Rich
    import to start."""
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )


app = group("Human-in-the-loop execution of remediation actions against production.", "operator")
actions_app = group("List and inspect actions.")
workflows_app = group("List and inspect workflows.")
audit_app = group("Read and verify the audit log.")
policy_app = group("Show or change the database's approval policy.")
ticket_app = group("Open tickets and move them through open, acknowledged, resolved.")
automations_app = group("Versioned automations started by ticket events.")
app.add_typer(actions_app, name="actions")
app.add_typer(workflows_app, name="workflows")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(ticket_app, name="ticket")
app.add_typer(automations_app, name="automations")

try:
    from operator_core.cli.secrets import app as secrets_app

    app.add_typer(secrets_app, name="secrets")
except ImportError:  # pragma: no cover - the secrets store ships with the runbook subjects
    pass


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "operator"


def default_db() -> Path:
    return state_dir() / "operator.db"


class Config:
    def __init__(
        self, db: str | None, subject: str | None, approval_mode: str | None, actor: str | None
    ) -> None:
        # An empty setting in the environment is unset (as shells clear one); an empty option
        # is a mistake, refused rather than read as "the default".
        given = db if db is not None else os.environ.get("OPERATOR_DB") or None
        if given is not None and not given.strip():
            raise ValidationError("--db is empty: give the database file's path", "db")
        self.db_explicit = given is not None
        self.target = parse_target(given) if given is not None else DbTarget(path=default_db())
        # A URL has no path (only a stand-in where nothing can be made); the root callback
        # lets only POSTGRES_COMMANDS see it.
        self.db = self.target.path or NOWHERE
        if subject is not None and not subject.strip():
            raise ValidationError(
                "--subject is empty: give demo, commands:FILE.toml, http:FILE.toml or module:Class",
                "subject",
            )
        self.subject_spec = subject or os.environ.get("OPERATOR_SUBJECT") or "demo"
        self.approval_mode = (
            None if approval_mode is None else parse_bool(approval_mode, "--approval-mode")
        )
        self.identity = current_identity().text
        if actor is not None:
            check_label(actor, "--actor", "actor")
        # A label recorded beside the OS identity; never who the four-eyes rule sees.
        self.actor = (actor or os.environ.get("OPERATOR_ACTOR") or "").strip() or self.identity

    @property
    def who(self) -> str:
        """The identity and label, as the audit log shows them."""
        return actor_text(self.actor, self.identity)

    def require_db(self) -> None:
        if not self.db.exists():
            raise DatabaseError(
                f"no database at {self.db} (check --db / OPERATOR_DB; a proposal or "
                "'operator run' creates it)"
            )

    def check_creatable(self) -> None:
        """A database is created only in a directory that exists, except the default
        location's: a mistyped --db would otherwise hold proposals no runner looks at."""
        folder = self.db.parent
        if self.db_explicit and not self.db.exists() and not folder.is_dir():
            raise DatabaseError(
                f"no directory {folder} for the database {self.db.name}: create it first, "
                "or check --db / OPERATOR_DB"
            )

    def executor(
        self,
        with_subject: bool = False,
        create: bool = False,
        seed_policy: bool = True,
        read_only: bool = False,
    ) -> ActionExecutor:
        """``create``: a command that writes may make the database; else it must exist (and
        hold an Operator database). ``read_only``: a reading command, which never creates
        nor migrates the file."""
        from operator_core.actions.executor import ActionExecutor
        from operator_core.actions.registry import ActionRegistry
        from operator_core.db.actions import ActionDB

        if self.target.url is not None:
            pass  # the server says whether the database exists (PgStore.open)
        elif create and not read_only:
            self.check_creatable()
        else:
            self.require_db()
        registry = ActionRegistry()
        if with_subject:
            from operator_core.subjects.loader import load_subject

            registry = ActionRegistry.from_subject(load_subject(self.subject_spec))
        if self.target.url is not None:
            from operator_core.db.pg.store import PgActionDB

            db: ActionDB = PgActionDB(
                self.target.url, create=create and not read_only, read_only=read_only
            )
        else:
            db = ActionDB(self.db, create=create and not read_only, read_only=read_only)
        return ActionExecutor(
            self.db, registry, approval_mode=self.approval_mode, seed_policy=seed_policy, db=db
        )


def get_config(ctx: typer.Context) -> Config:
    cfg = ctx.obj
    assert isinstance(cfg, Config)
    return cfg


def run_sync(coro: Awaitable[T]) -> T:
    import asyncio  # here: ``operator --help`` and a usage error need no event loop

    return asyncio.run(coro)  # type: ignore[arg-type]


async def with_executor(
    cfg: Config,
    fn: Callable[[ActionExecutor], Awaitable[T]],
    with_subject: bool = False,
    create: bool = False,
    seed_policy: bool = False,
    read_only: bool = False,
) -> T:
    """Open the executor (the database must exist unless ``create``; a ``read_only`` command
    leaves the file as it is), run ``fn``, close.
    With ``seed_policy`` (the commands that start or allow work: propose, approve, resume,
    run) the environment's policy settings seed a new database and must agree with an
    existing one's; the others (reading, cancelling, the kill switch) work whatever they
    say."""
    executor = cfg.executor(with_subject, create, seed_policy, read_only)
    try:
        await executor.open()
        return await fn(executor)
    finally:
        await executor.close()
        if with_subject and executor.registry.subject is not None:
            await executor.registry.subject.aclose()


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"operator {version('operator-ops')}")
        raise typer.Exit()


async def with_reads(cfg: Config, fn: Callable[[Reads], Awaitable[T]]) -> T:
    """Run ``fn`` on the database's own reads (``status``): no executor, models nor
    pydantic to import, so the command starts about as fast as the dashboard's first frame.
    Read only, as every reading command."""
    from operator_core.db.reads import Reads

    db: Reads
    if cfg.target.url is not None:
        from operator_core.db.pg.store import PgActionDB

        db = PgActionDB(cfg.target.url, read_only=True)
    else:
        cfg.require_db()
        db = Reads(cfg.db, read_only=True)
    try:
        await db.open()
        return await fn(db)
    finally:
        await db.close()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH|URL",
            help="SQLite file, or postgresql:// URL (env OPERATOR_DB)",
            show_default=False,
        ),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject",
            help="demo | commands:FILE.toml | http:FILE.toml | module:Class (env OPERATOR_SUBJECT)",
        ),
    ] = None,
    approval_mode: Annotated[
        str | None,
        typer.Option(
            "--approval-mode",
            help="Seeds a new database's policy: on = every "
            "action needs approval (env OPERATOR_APPROVAL_MODE; see 'policy')",
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            help="A label recorded beside your OS identity "
            "(env OPERATOR_ACTOR); never changes who you are",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version"),
    ] = False,
) -> None:
    cfg = Config(db, subject, approval_mode, actor)
    command = ctx.invoked_subcommand
    if cfg.target.is_postgres and command == "demo":
        raise DatabaseError(DEMO_ON_POSTGRES)
    if cfg.target.is_postgres and command not in POSTGRES_COMMANDS:
        raise DatabaseError(
            f"'operator {command}' does not run on PostgreSQL yet: {cfg.target.display}"
        )
    ctx.obj = cfg


POSTGRES_COMMANDS = (
    "migrate",
    "propose",
    "propose-workflow",
    "actions",
    "workflows",
    "approve",
    "reject",
    "cancel",
    "ticket",
    "policy",
    "status",
    "run",
    "kill-switch",
    "resume",
    "audit",
    "secrets",
    "tui",
    "copy",
    "automations",
    "mcp",
    "agents",
)
"""The commands that run on a PostgreSQL URL: all but ``demo``. A new command joins once
it is tested there; until then it refuses a URL in one line."""

DEMO_ON_POSTGRES = (
    "'operator demo' runs only on a SQLite file of its own: its agent approves whatever "
    "awaits approval and its runner runs it against a simulated cluster, which on a shared "
    "PostgreSQL database would be real work (give --db a file, or unset OPERATOR_DB; "
    "'operator tui --db URL' opens a PostgreSQL database)"
)
"""Not "yet": the demo never runs on PostgreSQL (docs/postgres.md, "The dashboard")."""
