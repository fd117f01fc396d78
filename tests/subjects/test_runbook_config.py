"""Loading runbook files: typed parameters and retry policy reach the registry, and a bad
file fails at start-up with the file, the action and the field in the message."""

from __future__ import annotations

import pytest
from operator_core.actions.registry import ActionRegistry, RiskLevel
from operator_core.errors import ConfigError, ValidationError
from operator_core.subjects.base import Subject
from operator_core.subjects.loader import load_subject
from operator_core.subjects.runbook import load_runbook_subject

from .conftest import Runbooks

GOOD = """
[defaults]
timeout = 20
retry = { max_retries = 4, backoff_min = 2.0 }

[actions.restart]
description = "Restart a unit"
risk = "high"
requires_approval = true
timeout = 45
kill_grace = 2
argv = ["systemctl", "restart", "{unit}"]
retry = { max_retries = 1, backoff_max = 90 }
[actions.restart.params.unit]
type = "enum"
choices = ["nginx", "app"]

[actions.hook]
url = "https://example.invalid/{name}"
[actions.hook.params.name]
type = "string"
pattern = "[a-z]+"
required = false
[actions.hook.params.count]
type = "integer"
default = "3"
[actions.hook.params.ratio]
type = "number"
default = 1
[actions.hook.params.dry_run]
type = "boolean"
default = true
"""


def test_definitions_carry_policy_and_typed_parameters(runbooks: Runbooks) -> None:
    subject = runbooks.load(GOOD)
    assert isinstance(subject, Subject)
    registry = ActionRegistry.from_subject(subject)
    restart = registry.require("restart")
    assert restart.description == "Restart a unit"
    assert restart.risk_level == RiskLevel.HIGH and restart.requires_approval
    assert restart.timeout_seconds == 45 + 2 + 1  # the action's timeout, grace, clean-up
    assert restart.max_retries == 1
    assert restart.retry_min_wait_seconds == 2.0 and restart.retry_max_wait_seconds == 90
    assert restart.parameters["unit"].choices == ("nginx", "app")
    hook = registry.require("hook")
    assert hook.risk_level == RiskLevel.MEDIUM and not hook.requires_approval
    assert hook.timeout_seconds == 21 and hook.max_retries == 4
    params = hook.parameters
    assert params["name"].type == "str" and params["name"].pattern == "[a-z]+"
    assert not params["name"].required
    assert params["count"].default == 3 and params["ratio"].default == 1.0
    assert params["dry_run"].default is True


def test_registry_validation_uses_the_declared_types(runbooks: Runbooks) -> None:
    registry = ActionRegistry.from_subject(runbooks.load(GOOD))
    from operator_core.actions.registry import validate_action_params

    with pytest.raises(ValidationError, match="unit"):
        validate_action_params(registry.require("restart"), {"unit": "sshd"})
    with pytest.raises(ValidationError, match="name"):
        validate_action_params(registry.require("hook"), {"name": "Evil/../x"})
    assert validate_action_params(registry.require("hook"), {"count": "5"}) == {
        "count": 5,
        "ratio": 1.0,
        "dry_run": True,
    }


@pytest.mark.parametrize("kind", ["commands", "http", "runbook"])
def test_every_subject_prefix_loads_the_whole_file(runbooks: Runbooks, kind: str) -> None:
    path = runbooks.write(GOOD)
    subject = load_subject(f"{kind}:{path}")
    assert sorted(d.name for d in subject.action_definitions()) == ["hook", "restart"]
    assert load_runbook_subject(str(path), kind=kind).name == f"{kind}:{path.name}"


BAD = [
    ("[actions.a\nargv = 1", None, None, "not valid TOML"),
    ("[other]\nx = 1", None, None, "unknown key"),
    ("[defaults]\ntimeout = 1", None, "actions", "declares no actions"),
    ('[actions.a]\nargv = ["x"]\nrequires_aproval = true', "a", "requires_aproval", "unknown key"),
    ('[actions.a]\nargv = "ls -l"', "a", "argv", "array"),
    ("[actions.a]\nargv = []", "a", "argv", "non-empty"),
    ('[actions.a]\nargv = ["ls", "{nope}"]', "a", "argv[1]", "not a parameter"),
    ('[actions.a]\nargv = ["ls", "{unclosed"]', "a", "argv[1]", "unmatched"),
    ('[actions.a]\nargv = ["{prog}"]\nparams.prog.type = "string"', "a", "argv[0]", "fixed"),
    ('[actions.a]\nargv = ["ls"]\nurl = "http://x"', "a", None, "not both"),
    ("[actions.a]\ndescription = 'x'", "a", None, "either argv"),
    ('[actions.a]\nargv = ["ls"]\nrisk = "extreme"', "a", "risk", "low, medium or high"),
    ('[actions.a]\nargv = ["ls"]\ntimeout = -1', "a", "timeout", "positive"),
    ('[actions.a]\nargv = ["ls"]\ntimeout = "10s"', "a", "timeout", "number"),
    (
        '[actions.a]\nargv = ["ls"]\nrequires_approval = "yes"',
        "a",
        "requires_approval",
        "true or false",
    ),
    ('[actions.a]\nargv = ["ls"]\nretry = { max_retries = -1 }', "a", "retry.max_retries", ">= 0"),
    (
        '[actions.a]\nargv = ["ls"]\nretry = { backoff_min = 10, backoff_max = 1 }',
        "a",
        "retry.backoff_max",
        "at least",
    ),
    ('[actions.a]\nargv = ["ls"]\nretry = { attempts = 3 }', "a", "retry.attempts", "unknown key"),
    ('[actions.a]\nargv = ["ls"]\nparams.p.type = "uuid"', "a", "params.p.type", "unknown type"),
    ('[actions.a]\nargv = ["ls"]\nparams.p.type = "enum"', "a", "params.p.choices", "needs a list"),
    (
        '[actions.a]\nargv = ["ls"]\nparams.p = { type = "integer", choices = ["x"] }',
        "a",
        "params.p.choices",
        "integer",
    ),
    (
        '[actions.a]\nargv = ["ls"]\nparams.p = { pattern = "[" }',
        "a",
        "params.p.pattern",
        "regular expression",
    ),
    (
        '[actions.a]\nargv = ["ls"]\nparams.p = { type = "integer", pattern = "1" }',
        "a",
        "params.p.pattern",
        "only string",
    ),
    (
        '[actions.a]\nargv = ["ls"]\nparams.p = { pattern = "[a-z]+", default = "A1" }',
        "a",
        "params.p.default",
        "does not match",
    ),
    (
        '[actions.a]\nargv = ["ls"]\nparams.p = { type = "integer", default = "many" }',
        "a",
        "params.p.default",
        "integer",
    ),
    ('[actions.a]\nargv = ["ls"]\nparams.p = { typo = 1 }', "a", "params.p.typo", "unknown key"),
    (
        '[actions.a]\nargv = ["ls"]\nenv = { "BAD-NAME" = "x" }',
        "a",
        "env.BAD-NAME",
        "environment variable",
    ),
    ('[actions.a]\nurl = "{host}/x"\nparams.host.type = "string"', "a", "url", "cannot choose"),
    ('[actions.a]\nurl = "ftp://x"', "a", "url", "http"),
    ('[actions.a]\nurl = "http://x"\nmethod = "FETCH"', "a", "method", "unknown method"),
    ('[actions.a]\nurl = "http://x"\nbody = "raw"', "a", "body", "table"),
    ('[actions.a]\nurl = "http://x"\nbody = { t = "{nope}" }', "a", "body", "body.t"),
    ('[actions.a]\nurl = "http://x"\nexpect_status = [99]', "a", "expect_status", "status codes"),
    ('[actions.a]\nurl = "http://x"\nauth = { type = "oauth" }', "a", "auth.type", "unknown auth"),
    ('[actions.a]\nurl = "http://x"\nauth = { type = "bearer" }', "a", "auth.token", "needs token"),
    (
        '[actions.a]\nurl = "http://x"\nauth = { type = "bearer", token = "literal" }',
        "a",
        "auth.token",
        "secret",
    ),
    (
        '[actions.a]\nurl = "http://x"\nauth = { type = "basic", username = "u", '
        'password = "{secret:P}", token = "{secret:T}" }',
        "a",
        "auth.token",
        "unknown key",
    ),
    (
        '[actions.a]\nurl = "http://x"\nauth = { type = "custom", header = "Bad Header", '
        'value = "{secret:K}" }',
        "a",
        "auth.header",
        "header name",
    ),
    ('[actions.a]\nurl = "http://x"\nkill_grace = 1', "a", "kill_grace", "unknown key"),
    ('[actions."bad name"]\nargv = ["ls"]', "bad name", None, "action name"),
    ('[actions.a]\nargv = ["ls", "{ticket.owner}"]', "a", "argv[1]", "ticket field"),
    ('[actions.a]\nargv = ["ls", "{secret:bad-name}"]', "a", "argv[1]", "secret name"),
    ('[actions.a]\nargv = ["ls", "{secret:KEY}"]', "a", "argv[1]", "reserved"),
]


@pytest.mark.parametrize(("text", "action", "field", "problem"), BAD)
def test_a_bad_file_names_file_action_and_field(
    runbooks: Runbooks, text: str, action: str | None, field: str | None, problem: str
) -> None:
    path = runbooks.write(text)
    with pytest.raises(ConfigError) as info:
        load_runbook_subject(str(path), kind="commands")
    message = str(info.value)
    assert message.startswith(str(path.resolve()))
    if action is not None:
        assert f"action '{action}'" in message
    if field is not None:
        assert f"field '{field}'" in message
    assert problem in message


def test_a_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such runbook file"):
        load_subject(f"commands:{tmp_path / 'nope.toml'}")
