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


@app.command("set")
def set_secret(
    name: str = typer.Argument(..., help="Secret name, e.g. PAGER_TOKEN"),
) -> None:
    """Store a secret. The value is read from stdin (piped) or a hidden prompt."""
    from operator_core.secrets import KEY_ENV, SecretStore, check_name

    check_name(name)
    store = SecretStore()
    created_key = not os.environ.get(KEY_ENV) and not store.key_file.exists()
    store.set(name, _read_value(name))
    if created_key:
        typer.echo(
            f"created secret key {visible(store.key_file)} (mode 0600); keep it apart from "
            "backups of the secrets file",
            err=True,
        )
    typer.echo(f"stored secret {name} in {visible(store.path)}")


@app.command("list")
def list_secrets() -> None:
    """Names of the stored secrets (never their values)."""
    from operator_core.secrets import SecretStore, env_value

    for name in SecretStore().names():
        suffix = "  (overridden by the environment)" if env_value(name) else ""
        typer.echo(f"{name}{suffix}")


@app.command("delete")
def delete_secret(name: str = typer.Argument(..., help="Secret name")) -> None:
    """Remove a secret from the file."""
    from operator_core.secrets import SecretStore, check_name

    check_name(name)
    store = SecretStore()
    if not store.delete(name):
        raise ConfigError(f"no secret named {name} in {store.path}")
    typer.echo(f"deleted secret {name}")
