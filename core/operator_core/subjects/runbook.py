"""Runbook subjects: typed actions declared in a TOML file, run as commands or webhooks.

``--subject commands:FILE``, ``http:FILE`` and ``runbook:FILE`` all load the whole file; one
file may mix the kinds of action (commands, webhooks, and webhooks that open a Jira or Linear
issue). Reading and checking the file is ``runbook_file``'s job.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from operator_core.actions.definitions import (
    ActionDefinition,
    confine_paths,
    validate_action_params,
)
from operator_core.actions.subject import BaseSubject, ExecutionContext
from operator_core.errors import ActionFailed, ConfigError, ValidationError
from operator_core.secrets import Redactor, SecretResolver, SecretStore, install_log_filter
from operator_core.subjects.commands import run_command
from operator_core.subjects.runbook_file import KINDS, RunbookAction, parse_runbook
from operator_core.subjects.templates import RenderContext
from operator_core.subjects.webhooks import send


class RunbookSubject(BaseSubject):
    """The actions of one runbook file."""

    def __init__(
        self,
        path: Path | str,
        kind: str = "runbook",
        *,
        secret_store: SecretStore | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"unknown runbook subject kind {kind!r} (use {', '.join(KINDS)})")
        self.path = Path(path).expanduser().resolve()
        self.kind = kind
        self.name = f"{kind}:{self.path.name}"
        self._store = secret_store
        self._actions = parse_runbook(self.path)
        install_log_filter()  # before any secret is resolved in this process

    @property
    def actions(self) -> dict[str, RunbookAction]:
        return dict(self._actions)

    def action_definitions(self) -> list[ActionDefinition]:
        return [a.definition for a in self._actions.values()]

    def preview(self, action_name: str, parameters: dict[str, Any]) -> str | None:
        """The command line or request as it will run; secrets appear as {secret:NAME}
        (their values are never looked up here) and the ticket as {ticket.FIELD}."""
        action = self._actions.get(action_name)
        if action is None:
            return None
        try:
            params = validate_action_params(action.definition, parameters or {})
        except ValidationError as exc:
            return f"cannot preview: {exc}"
        ctx = RenderContext(params)
        if action.command is not None:
            return action.command.preview(ctx)
        assert action.http is not None
        return action.http.preview(ctx)

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any] | None:
        action = self._actions.get(action_name)
        if action is None:
            raise ActionFailed(f"action '{action_name}' is not in {self.path}", retryable=False)
        try:
            params = validate_action_params(action.definition, parameters)
            confine_paths(action.definition, params)
        except ValidationError as exc:
            raise ActionFailed(str(exc), retryable=False) from None
        resolver = SecretResolver(self._store, context.automation)
        redactor = Redactor()
        try:
            for name in action.secrets:
                resolver.get(name)
            redactor = Redactor(resolver.values)
            ctx = RenderContext(params, context.ticket, secret=resolver.get)
            return await self._run(action, ctx, redactor, context)
        except ActionFailed as exc:
            raise ActionFailed(
                redactor.redact(str(exc)),
                retryable=exc.retryable,
                result_data=redactor.redact_data(exc.result_data),
            ) from None
        except ConfigError as exc:
            raise ActionFailed(redactor.redact(str(exc)), retryable=False) from None
        except Exception as exc:
            raise ActionFailed(redactor.redact(f"{type(exc).__name__}: {exc}")) from None

    async def _run(
        self,
        action: RunbookAction,
        ctx: RenderContext,
        redactor: Redactor,
        context: ExecutionContext,
    ) -> dict[str, Any]:
        if action.command is not None:
            spec = action.command
            if not spec.cwd.is_dir():
                raise ActionFailed(f"working directory {spec.cwd} does not exist", retryable=False)
            argv, env = spec.render(ctx)
            result: dict[str, Any] = redactor.redact_data(
                await run_command(
                    spec,
                    argv,
                    env,
                    redactor,
                    spec.render_stdin(ctx),
                    on_start=context.process_started,
                )
            )
            return result
        assert action.http is not None
        spec_http = action.http
        request = spec_http.render(ctx)
        try:
            async with asyncio.timeout(spec_http.timeout):
                response: dict[str, Any] = await send(spec_http, request, redactor)
        except TimeoutError:
            raise ActionFailed(
                f"timed out after {spec_http.timeout:g}s on {request.method} "
                f"{redactor.redact(request.url)}",
                retryable=True,
            ) from None
        redacted: dict[str, Any] = redactor.redact_data(response)
        return redacted


def load_runbook_subject(path: str, kind: str = "runbook") -> RunbookSubject:
    """Entry point of ``--subject commands:PATH`` / ``http:PATH`` / ``runbook:PATH``."""
    return RunbookSubject(path, kind)
