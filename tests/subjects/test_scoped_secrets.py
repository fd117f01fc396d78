"""Secrets scoped to an automation (seed 004's WorkflowActionSecret): stored encrypted beside
the others, seen only by that automation's runs, winning over a global secret of the same
name, and redacted like every secret."""

from __future__ import annotations

import dataclasses
import hashlib
import re

import pytest
from operator_core.automations.definition import NAME_PATTERN
from operator_core.cli.secrets import app
from operator_core.errors import ConfigError
from operator_core.secrets import AUTOMATION_RE, SecretResolver, SecretStore
from typer.testing import CliRunner

from .conftest import Runbooks

GLOBAL, SCOPED = "global-value-123456", "scoped-value-654321"

# The command prints a digest of the value it got: not a form of the value, so it is not
# redacted, and it tells which value the command saw.
RUNBOOK = """
[actions.show]
argv = [@PY@, "-c", "import hashlib, os; print(hashlib.sha256(os.environb[b'TOKEN']).hexdigest())"]
env = { TOKEN = "{secret:TOKEN}" }
timeout = 5
"""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_the_automation_name_rule_matches_the_definitions() -> None:
    assert AUTOMATION_RE.pattern == NAME_PATTERN


def test_a_scoped_value_is_kept_apart_from_the_global_names() -> None:
    store = SecretStore()
    store.set("TOKEN", GLOBAL)
    store.set("TOKEN", SCOPED, automation="restart-api")
    assert store.names() == ["TOKEN"]
    assert store.scoped_names() == [("restart-api", "TOKEN")]
    assert store.get("TOKEN") == GLOBAL
    assert store.get_scoped("TOKEN", "restart-api") == SCOPED
    assert store.get_scoped("TOKEN", "other") is None
    assert SCOPED.encode() not in store.path.read_bytes()
    assert store.delete("TOKEN", automation="restart-api") is True
    assert store.delete("TOKEN", automation="restart-api") is False
    assert store.scoped_names() == [] and store.get("TOKEN") == GLOBAL


def test_the_automation_sees_its_own_value_first_others_the_global(monkeypatch) -> None:
    store = SecretStore()
    store.set("TOKEN", GLOBAL)
    store.set("TOKEN", SCOPED, automation="restart-api")
    assert SecretResolver(store, "restart-api").get("TOKEN") == SCOPED
    assert SecretResolver(store, "another").get("TOKEN") == GLOBAL
    assert SecretResolver(store).get("TOKEN") == GLOBAL
    # The scoped value wins over the environment's global one too.
    monkeypatch.setenv("OPERATOR_SECRET_TOKEN", "from-the-environment")
    assert SecretResolver(store, "restart-api").get("TOKEN") == SCOPED
    assert SecretResolver(store, "another").get("TOKEN") == "from-the-environment"


def test_a_secret_only_one_automation_has_is_missing_for_the_rest() -> None:
    store = SecretStore()
    store.set("ONLY_MINE", SCOPED, automation="restart-api")
    assert SecretResolver(store, "restart-api").get("ONLY_MINE") == SCOPED
    with pytest.raises(ConfigError, match="secret ONLY_MINE is not set"):
        SecretResolver(store, "another").get("ONLY_MINE")
    with pytest.raises(ConfigError, match="secret ONLY_MINE is not set"):
        SecretResolver(store).get("ONLY_MINE")


@pytest.mark.parametrize("automation", ["", "has space", "a@b", "-dash-first", "x" * 101])
def test_bad_automation_names_are_refused(automation: str) -> None:
    with pytest.raises(ConfigError, match="bad automation name"):
        SecretStore().set("TOKEN", SCOPED, automation=automation)
    assert not SecretStore().path.exists()


async def test_a_runbook_action_run_for_an_automation_uses_its_secret(
    runbooks: Runbooks,
) -> None:
    store = SecretStore()
    store.set("TOKEN", GLOBAL)
    store.set("TOKEN", SCOPED, automation="restart-api")
    subject = runbooks.load(RUNBOOK)
    for automation, expected in (("restart-api", SCOPED), (None, GLOBAL), ("other", GLOBAL)):
        ctx = dataclasses.replace(runbooks.context(subject, "show"), automation=automation)
        result = await subject.execute("show", {}, ctx)
        assert result is not None
        assert digest(expected) in str(result) and expected not in str(result), result


def test_cli_sets_lists_and_deletes_a_scoped_secret() -> None:
    cli = CliRunner()
    result = cli.invoke(app, ["set", "TOKEN", "--automation", "restart-api"], input=SCOPED)
    assert result.exit_code == 0, result.output
    assert "stored secret TOKEN for automation restart-api" in result.output
    assert SCOPED not in result.output
    assert SecretStore().get_scoped("TOKEN", "restart-api") == SCOPED
    assert SecretStore().get("TOKEN") is None
    result = cli.invoke(app, ["list"])
    assert result.output.splitlines() == ["TOKEN  (automation restart-api)"]
    result = cli.invoke(app, ["delete", "TOKEN"])
    assert isinstance(result.exception, ConfigError)
    result = cli.invoke(app, ["delete", "TOKEN", "--automation", "restart-api"])
    assert result.exit_code == 0 and SecretStore().scoped_names() == []


def test_cli_refuses_a_bad_automation_name_before_reading_the_value() -> None:
    result = CliRunner().invoke(app, ["set", "TOKEN", "--automation", "no spaces"], input="x")
    assert isinstance(result.exception, ConfigError)
    assert re.search(r"bad automation name 'no spaces'", str(result.exception))
    assert not SecretStore().path.exists()
