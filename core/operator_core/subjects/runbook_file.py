"""Reading a runbook file: typed actions declared in TOML, as commands or webhooks.

An action with ``argv`` is a command, one with ``url`` a webhook, one with ``jira`` or
``linear`` a webhook that opens an issue.

The file is checked completely at load time: a mistake names the file, the action and the
field. The format is documented in the README.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operator_core.actions.definitions import (
    ActionDefinition,
    ParamDef,
    RiskLevel,
    normalise_path,
    validate_action_params,
)
from operator_core.errors import ValidationError
from operator_core.subjects import jira, linear, oauth2
from operator_core.subjects.commands import CommandSpec
from operator_core.subjects.runbook_fields import FieldCtx, budget, kind_of
from operator_core.subjects.templates import (
    MAX_JSON_DEPTH,
    TemplateError,
    parse_json,
)
from operator_core.subjects.webhooks import AUTH_TYPES, METHODS, AuthSpec, HttpSpec

KINDS = ("commands", "http", "runbook")
DEFAULT_TIMEOUT = 60.0
DEFAULT_KILL_GRACE = 0.5
MAX_KILL_GRACE = 3600.0
MAX_RETRIES = 1000
# The engine's hard limit leaves this much beyond the action's own timeout for clean-up, so
# a timed-out attempt is recorded with its exit code and output tails.
CLEANUP_MARGIN = 1.0

_ACTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PARAM_TYPES = {
    "string": "str",
    "str": "str",
    "integer": "int",
    "int": "int",
    "number": "float",
    "float": "float",
    "boolean": "bool",
    "bool": "bool",
    "enum": "str",
    "path": "path",
}

_COMMON_KEYS = {
    "description",
    "risk",
    "requires_approval",
    "timeout",
    "retry",
    "params",
    "budget",
}
_COMMAND_KEYS = {"argv", "cwd", "env", "stdin", "secrets_in_argv", "kill_grace"}
_HTTP_KEYS = {"method", "url", "headers", "body", "expect_status", "auth"}
# The key that says what kind an action is, and the keys that kind allows.
_KIND_KEYS = {
    "argv": _COMMAND_KEYS,
    "url": _HTTP_KEYS,
    "jira": {"jira", "auth"},
    "linear": {"linear", "auth"},
}
_DEFAULT_KEYS = {"risk", "requires_approval", "timeout", "retry", "kill_grace"}
_RETRY_KEYS = {"max_retries", "backoff_min", "backoff_max"}
_PARAM_KEYS = {"type", "description", "required", "default", "choices", "pattern", "under"}
_AUTH_KEYS = {
    "none": {"type"},
    "bearer": {"type", "token"},
    "basic": {"type", "username", "password"},
    "custom": {"type", "header", "value"},
}


@dataclass(frozen=True)
class RunbookAction:
    definition: ActionDefinition
    command: CommandSpec | None = None
    http: HttpSpec | None = None

    @property
    def secrets(self) -> list[str]:
        spec = self.command or self.http
        assert spec is not None
        return sorted(set(spec.secrets))


def _param(ctx: FieldCtx, name: str, raw: Any) -> ParamDef:
    field = f"params.{name}"
    if not _PARAM_NAME.fullmatch(name):
        raise ctx.error(field, "a parameter name is letters, digits and underscores")
    spec = ctx.table(raw, field)
    ctx.keys(spec, _PARAM_KEYS, field)
    type_name = spec.get("type", "string")
    if type_name not in _PARAM_TYPES:
        raise ctx.error(
            f"{field}.type",
            f"unknown type {type_name!r} (use string, integer, number, boolean, enum or path)",
        )
    canonical = _PARAM_TYPES[type_name]
    description = ctx.string(spec.get("description", ""), f"{field}.description")
    choices = spec.get("choices")
    if type_name == "enum" and choices is None:
        raise ctx.error(f"{field}.choices", "an enum parameter needs a list of choices")
    under = _under(ctx, spec, field, canonical)
    probe_def = ParamDef(type=canonical, under=under)
    probe = ActionDefinition(name="probe", parameters={name: probe_def})
    if choices is not None:
        if not isinstance(choices, list) or not choices:
            raise ctx.error(f"{field}.choices", "must be a non-empty array")
        try:
            choices = [validate_action_params(probe, {name: c})[name] for c in choices]
        except ValidationError as exc:
            raise ctx.error(f"{field}.choices", str(exc)) from None
    pattern = spec.get("pattern")
    if pattern is not None:
        pattern = ctx.string(pattern, f"{field}.pattern")
        if canonical not in ("str", "path"):
            raise ctx.error(
                f"{field}.pattern", "only string and path parameters can have a pattern"
            )
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ctx.error(f"{field}.pattern", f"not a valid regular expression: {exc}") from None
    required = spec.get("required", "default" not in spec)
    if not isinstance(required, bool):
        raise ctx.error(f"{field}.required", f"must be true or false, not {kind_of(required)}")
    default = spec.get("default")
    param = ParamDef(
        type=canonical,
        description=description,
        required=required,
        choices=tuple(choices) if choices is not None else None,
        pattern=pattern,
        under=under,
    )
    if default is not None:
        try:
            default = validate_action_params(
                ActionDefinition(name="probe", parameters={name: param}), {name: default}
            )[name]
        except ValidationError as exc:
            raise ctx.error(f"{field}.default", str(exc)) from None
        param = param.model_copy(update={"default": default, "required": False})
    return param


def _under(ctx: FieldCtx, spec: dict[str, Any], field: str, canonical: str) -> str | None:
    """The directory a path parameter is confined to: required for a path, so a runbook
    says where its paths may lead (``under = "/"`` allows any absolute path)."""
    if canonical != "path":
        if "under" in spec:
            raise ctx.error(f"{field}.under", "only a path parameter can have 'under'")
        return None
    if "under" not in spec:
        raise ctx.error(
            f"{field}.under",
            'a path parameter needs under = "/some/dir" (the directory it must '
            'stay inside; "/" for any absolute path)',
        )
    under = ctx.string(spec["under"], f"{field}.under")
    try:
        return normalise_path(under, "under")
    except ValidationError:
        raise ctx.error(f"{field}.under", f"must be an absolute directory, not {under!r}") from None


def _retry(ctx: FieldCtx, raw: Any) -> dict[str, Any]:
    retry = ctx.table(raw, "retry")
    ctx.keys(retry, _RETRY_KEYS, "retry")
    out: dict[str, Any] = {}
    if "max_retries" in retry:
        n = retry["max_retries"]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_RETRIES:
            raise ctx.error(
                "retry.max_retries", f"must be an integer >= 0 and <= {MAX_RETRIES}, not {n!r}"
            )
        out["max_retries"] = n
    if "backoff_min" in retry:
        out["retry_min_wait_seconds"] = ctx.number(retry["backoff_min"], "retry.backoff_min")
    if "backoff_max" in retry:
        out["retry_max_wait_seconds"] = ctx.number(retry["backoff_max"], "retry.backoff_max")
    low, high = out.get("retry_min_wait_seconds"), out.get("retry_max_wait_seconds")
    if low is not None and high is not None and high < low:
        raise ctx.error("retry.backoff_max", f"must be at least backoff_min ({low:g})")
    return out


def _command(
    ctx: FieldCtx, raw: dict[str, Any], params: list[str], base: Path, timeout: float
) -> CommandSpec:
    argv_raw = raw["argv"]
    if not isinstance(argv_raw, list) or not argv_raw:
        raise ctx.error("argv", "must be a non-empty array of strings (no shell is used)")
    argv = tuple(ctx.template(item, f"argv[{i}]", params) for i, item in enumerate(argv_raw))
    if argv[0].refs:
        raise ctx.error("argv[0]", "the program must be fixed in the file, not a template")
    in_argv = raw.get("secrets_in_argv", False)
    if not isinstance(in_argv, bool):
        raise ctx.error("secrets_in_argv", f"must be true or false, not {kind_of(in_argv)}")
    for i, item in enumerate(argv):
        if item.secrets and not in_argv:
            raise ctx.error(
                f"argv[{i}]",
                f"{{secret:{item.secrets[0]}}} in argv is visible to every local user in the "
                "process list (ps, /proc/PID/cmdline): hand it over through env = { NAME = "
                '"{secret:...}" } or stdin = "{secret:...}", or set secrets_in_argv = true '
                "if the program takes it no other way",
            )
    cwd = Path(ctx.string(raw.get("cwd", "."), "cwd")).expanduser()
    env_raw = ctx.table(raw.get("env", {}), "env")
    env = {}
    for key, value in env_raw.items():
        if not _PARAM_NAME.fullmatch(key):
            raise ctx.error(f"env.{key}", "not a valid environment variable name")
        env[key] = ctx.template(value, f"env.{key}", params)
    stdin = ctx.template(raw["stdin"], "stdin", params) if "stdin" in raw else None
    grace = ctx.number(
        raw.get("kill_grace", DEFAULT_KILL_GRACE),
        "kill_grace",
        positive=False,
        most=MAX_KILL_GRACE,
    )
    return CommandSpec(
        argv=argv,
        cwd=cwd if cwd.is_absolute() else base / cwd,
        env=env,
        timeout=timeout,
        kill_grace=grace,
        stdin=stdin,
    )


def _auth(ctx: FieldCtx, raw: Any, params: list[str]) -> AuthSpec:
    auth = ctx.table(raw, "auth")
    kind = auth.get("type", "none")
    if kind not in AUTH_TYPES:
        raise ctx.error("auth.type", f"unknown auth type {kind!r} (use {', '.join(AUTH_TYPES)})")
    if kind == "oauth2":
        return AuthSpec(type=kind, oauth2=oauth2.parse(ctx, auth))
    ctx.keys(auth, _AUTH_KEYS[kind], "auth")
    fields: dict[str, Any] = {}
    for key in sorted(_AUTH_KEYS[kind] - {"type", "header"}):
        if key not in auth:
            raise ctx.error(f"auth.{key}", f"{kind} auth needs {key}")
        fields[key] = ctx.template(auth[key], f"auth.{key}", params)
        if key != "username" and not fields[key].secrets:
            raise ctx.error(
                f"auth.{key}",
                "credentials must come from a secret, e.g. "
                '"{secret:API_TOKEN}", never from the file itself',
            )
    header = "Authorization"
    if kind == "custom":
        header = ctx.string(auth.get("header", ""), "auth.header")
        if not _HEADER_NAME.fullmatch(header):
            raise ctx.error("auth.header", f"{header!r} is not a valid header name")
    return AuthSpec(type=kind, header=header, **fields)


def _http(ctx: FieldCtx, raw: dict[str, Any], params: list[str], timeout: float) -> HttpSpec:
    method = ctx.string(raw.get("method", "POST"), "method").upper()
    if method not in METHODS:
        raise ctx.error("method", f"unknown method {method!r} (use {', '.join(METHODS)})")
    url = ctx.url(raw["url"], "url", params)
    headers = {}
    for key, value in ctx.table(raw.get("headers", {}), "headers").items():
        if not _HEADER_NAME.fullmatch(key):
            raise ctx.error(f"headers.{key}", "not a valid header name")
        headers[key] = ctx.template(value, f"headers.{key}", params)
    body = raw.get("body")
    if body is not None:
        if not isinstance(body, (dict, list)):
            raise ctx.error("body", "must be a table or an array (it is sent as JSON)")
        try:
            body = parse_json(body, params)
        except TemplateError as exc:
            raise ctx.error("body", str(exc)) from None
    expect = raw.get("expect_status")
    if expect is not None:
        if (
            not isinstance(expect, list)
            or not expect
            or any(
                isinstance(c, bool) or not isinstance(c, int) or not 100 <= c <= 599 for c in expect
            )
        ):
            raise ctx.error("expect_status", "must be a non-empty array of status codes")
        expect = tuple(expect)
    auth = _auth(ctx, raw.get("auth", {"type": "none"}), params)
    return HttpSpec(
        method=method,
        url=url,
        headers=headers,
        body=body,
        expect=expect,
        timeout=timeout,
        auth=auth,
    )


def _action(path: Path, name: str, raw: Any, defaults: dict[str, Any]) -> RunbookAction:
    ctx = FieldCtx(path, name)
    if not _ACTION_NAME.fullmatch(name):
        raise ctx.error(None, "an action name is letters, digits, '_', '-' and '.'")
    raw = ctx.table(raw, "action")
    merged = {**defaults, **raw}
    if isinstance(defaults.get("retry"), dict) and isinstance(raw.get("retry"), dict):
        merged["retry"] = {**defaults["retry"], **raw["retry"]}
    kinds = [k for k in _KIND_KEYS if k in raw]
    if len(kinds) != 1:
        raise ctx.error(
            None,
            "give either argv (a command), url (a webhook), jira or linear (an issue to open)"
            + (", not both" if len(kinds) == 2 else ", not several" if kinds else ""),
        )
    kind = kinds[0]
    ctx.keys(raw, _COMMON_KEYS | _KIND_KEYS[kind], None)
    params = {
        pname: _param(ctx, pname, spec)
        for pname, spec in ctx.table(merged.get("params", {}), "params").items()
    }
    risk = ctx.string(merged.get("risk", "medium"), "risk").lower()
    if risk not in {r.value for r in RiskLevel}:
        raise ctx.error("risk", f"unknown risk {risk!r} (use low, medium or high)")
    approval = merged.get("requires_approval", False)
    if not isinstance(approval, bool):
        raise ctx.error("requires_approval", f"must be true or false, not {kind_of(approval)}")
    timeout = ctx.number(merged.get("timeout", DEFAULT_TIMEOUT), "timeout")
    retry = _retry(ctx, merged["retry"]) if "retry" in merged else {}
    names = list(params)
    command = http = None
    if kind == "argv":
        command = _command(ctx, merged, names, path.parent, timeout)
        hard_limit = timeout + command.kill_grace + CLEANUP_MARGIN
    else:
        if kind == "url":
            http = _http(ctx, merged, names, timeout)
        else:
            auth = _auth(ctx, merged["auth"], names) if "auth" in merged else None
            if kind == "jira":
                http = jira.parse(ctx, merged["jira"], names, auth, timeout)
            else:
                http = linear.parse(ctx, merged["linear"], params, auth, timeout)
        hard_limit = timeout + CLEANUP_MARGIN
    definition = ActionDefinition(
        name=name,
        description=ctx.string(merged.get("description", ""), "description"),
        parameters=params,
        risk_level=RiskLevel(risk),
        requires_approval=approval,
        timeout_seconds=hard_limit,
        budget=budget(ctx, raw["budget"]) if "budget" in raw else None,
        **retry,
    )
    return RunbookAction(definition, command=command, http=http)


def parse_runbook(path: Path) -> dict[str, RunbookAction]:
    """Read and check a runbook file. Raises ConfigError naming file, action and field."""
    ctx = FieldCtx(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ctx.error(
            None, f"nested too deeply to read (at most {MAX_JSON_DEPTH} levels are allowed)"
        ) from None
    except FileNotFoundError:
        raise ctx.error(None, "no such runbook file") from None
    except OSError as exc:
        raise ctx.error(None, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ctx.error(None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ctx.error(None, f"not valid TOML: {exc}") from None
    ctx.keys(data, {"actions", "defaults"}, None)
    defaults = ctx.table(data.get("defaults", {}), "defaults")
    ctx.keys(defaults, _DEFAULT_KEYS, "defaults")
    actions = ctx.table(data.get("actions", {}), "actions")
    if not actions:
        raise ctx.error("actions", "the file declares no actions ([actions.NAME] tables)")
    return {name: _action(path, name, raw, defaults) for name, raw in actions.items()}
