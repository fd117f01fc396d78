"""``operator secrets``: manage the encrypted secrets file that runbooks use as
``{secret:NAME}``. A value is read from stdin or a hidden prompt, never from the command
line (where ``ps`` and shell history would keep it). The store (and its cryptography) is
imported by the command that uses it, not by every ``operator`` start."""

from __future__ import annotations

import os
import sys

import typer

from operator_core.errors import ConfigError
from operator_core.safe_text import visible

app = typer.Typer(
    help="Secrets for runbook actions ({secret:NAME}), kept in an encrypted file. "
    "OPERATOR_SECRET_NAME in the environment takes precedence over the file.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _read_value(name: str) -> str:
    if sys.stdin is not None and not sys.stdin.isatty():
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    else:
        value = typer.prompt(f"Value for {name}", hide_input=True, confirmation_prompt=True)
    if not value:
        raise ConfigError(f"secret {name}: the value is empty; nothing was stored")
    return value


AUTOMATION = typer.Option(
    None,
    "--automation",
    metavar="NAME",
    help="Only this automation's runs see the value; it wins over a global secret (and "
    "OPERATOR_SECRET_NAME) of the same name.",
)


def _scope(name: str, automation: str | None) -> str:
    return name if automation is None else f"{name} for automation {automation}"


@app.command("set")
def set_secret(
    name: str = typer.Argument(..., help="Secret name, e.g. PAGER_TOKEN"),
    automation: str | None = AUTOMATION,
) -> None:
    """Store a secret. The value is read from stdin (piped) or a hidden prompt."""
    from operator_core.secrets import KEY_ENV, SecretStore, check_name, scoped_key

    check_name(name)
    if automation is not None:
        scoped_key(name, automation)  # a bad name is refused before the value is read
    store = SecretStore()
    created_key = not os.environ.get(KEY_ENV) and not store.key_file.exists()
    store.set(name, _read_value(name), automation)
    if created_key:
        typer.echo(
            f"created secret key {visible(store.key_file)} (mode 0600); keep it apart from "
            "backups of the secrets file",
            err=True,
        )
    typer.echo(f"stored secret {_scope(name, automation)} in {visible(store.path)}")


@app.command("list")
def list_secrets() -> None:
    """Names of the stored secrets (never their values), then those scoped to automations."""
    from operator_core.secrets import SecretStore, env_value

    store = SecretStore()
    for name in store.names():
        suffix = "  (overridden by the environment)" if env_value(name) else ""
        typer.echo(f"{name}{suffix}")
    for automation, name in store.scoped_names():
        typer.echo(f"{name}  (automation {automation})")


@app.command("delete")
def delete_secret(
    name: str = typer.Argument(..., help="Secret name"),
    automation: str | None = typer.Option(
        None, "--automation", metavar="NAME", help="Delete that automation's own value."
    ),
) -> None:
    """Remove a secret from the file."""
    from operator_core.secrets import SecretStore, check_name

    check_name(name)
    store = SecretStore()
    if not store.delete(name, automation):
        raise ConfigError(f"no secret named {_scope(name, automation)} in {store.path}")
    typer.echo(f"deleted secret {_scope(name, automation)}")
