"""Runbook ``http`` actions: one webhook request through httpx.

5xx answers, timeouts and connection errors are retryable failures; 4xx and any other
unexpected status fail at once. Redirects are not followed (they would carry credentials to
another host). Parameter and ticket values are percent-encoded inside the URL, so they
cannot change its host or path structure.
"""

from __future__ import annotations

import codecs
import json
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import httpx

from operator_core.errors import ActionFailed
from operator_core.safe_text import visible
from operator_core.secrets import Redactor, basic_token, install_log_filter, register_sensitive
from operator_core.subjects import oauth2
from operator_core.subjects.templates import (
    RenderContext,
    Template,
    json_secrets,
    render,
    render_json,
)

BODY_BYTES = 4096
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
AUTH_TYPES = ("none", "bearer", "basic", "custom", "oauth2")


@dataclass(frozen=True)
class AuthSpec:
    type: str = "none"
    token: Template | None = None
    username: Template | None = None
    password: Template | None = None
    header: str = "Authorization"
    value: Template | None = None
    oauth2: oauth2.OAuth2Spec | None = None

    @property
    def templates(self) -> list[Template]:
        fixed = [t for t in (self.token, self.username, self.password, self.value) if t]
        return fixed + (self.oauth2.templates if self.oauth2 else [])

    def render(self, ctx: RenderContext) -> tuple[str, str] | None:
        """The auth header (name, value), or None for type none (and for oauth2, whose
        token is fetched when the request is sent)."""
        if self.oauth2 is not None:
            return ("Authorization", self.oauth2.preview(ctx)) if ctx.preview else None
        if self.type == "bearer" and self.token is not None:
            return "Authorization", f"Bearer {render(self.token, ctx)}"
        if self.type == "basic" and self.username is not None and self.password is not None:
            user, password = render(self.username, ctx), render(self.password, ctx)
            if ctx.preview:
                return "Authorization", f"Basic <base64 of {user}:{password}>"
            return "Authorization", f"Basic {basic_token(user, password)}"
        if self.type == "custom" and self.value is not None:
            return self.header, render(self.value, ctx)
        return None


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    sensitive: list[str] = field(default_factory=list)
    grant: oauth2.Grant | None = None


class Reply(Protocol):
    """How a declared API action (Jira, Linear) shapes its request and reads the answer."""

    def shape(self, body: Any) -> Any:
        """The rendered JSON body as the API wants it (e.g. empty optional fields left out)."""
        ...

    def done(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record of an expected status, with what the API created; or ActionFailed."""
        ...

    def explain(self, record: dict[str, Any]) -> str | None:
        """The API's own words for an unexpected status, if its answer has them."""
        ...


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


@dataclass(frozen=True)
class HttpSpec:
    method: str
    url: Template
    headers: dict[str, Template]
    body: Any  # a JSON-like structure whose strings are Templates, or None
    expect: tuple[int, ...] | None  # None: any 2xx
    timeout: float
    auth: AuthSpec
    body_bytes: int = BODY_BYTES
    reply: Reply | None = None

    @property
    def secrets(self) -> list[str]:
        templates = [self.url, *self.headers.values(), *self.auth.templates]
        return [s for t in templates for s in t.secrets] + json_secrets(self.body)

    def render(self, ctx: RenderContext) -> Request:
        headers = {k: render(t, ctx) for k, t in self.headers.items()}
        sensitive: list[str] = []
        auth = self.auth.render(ctx)
        if auth is not None:
            headers[auth[0]] = auth[1]
            if self.auth.type == "basic":
                # base64 of user:password: the secrets in it are known, this form is not
                sensitive.append(auth[1].removeprefix("Basic "))
        body = render_json(self.body, ctx) if self.body is not None else None
        if self.reply is not None:
            body = self.reply.shape(body)
        url = render(self.url, ctx, encode=_quote)
        grant = self.auth.oauth2.render(ctx) if self.auth.oauth2 and not ctx.preview else None
        return Request(self.method, url, headers, body, sensitive, grant)

    def preview(self, ctx: RenderContext) -> str:
        req = self.render(ctx)
        # One line per part: a parameter's newline or escape sequence is shown, not obeyed
        # (the body is JSON, whose strings escape them already).
        lines = [f"{req.method} {visible(req.url)}"]
        lines += [f"{k}: {visible(v)}" for k, v in req.headers.items()]
        if req.body is not None:
            lines += ["Content-Type: application/json", "", json.dumps(req.body, indent=2)]
        lines.append(f"(timeout {self.timeout:g}s; expect {self._expected()})")
        return "\n".join(lines)

    def _expected(self) -> str:
        return "2xx" if self.expect is None else ", ".join(str(c) for c in self.expect)

    def is_expected(self, status: int) -> bool:
        return 200 <= status < 300 if self.expect is None else status in self.expect


def _check(req: Request, redactor: Redactor) -> httpx.URL:
    try:
        url = httpx.URL(req.url)
    except httpx.InvalidURL as exc:
        raise ActionFailed(
            redactor.redact(f"bad URL {req.url!r}: {exc}"), retryable=False
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ActionFailed(
            redactor.redact(f"bad URL {req.url!r}: needs http(s)://host"), retryable=False
        )
    for name, value in req.headers.items():
        if "\r" in value or "\n" in value:
            raise ActionFailed(f"header {name} would contain a line break", retryable=False)
    return url


async def send(spec: HttpSpec, req: Request, redactor: Redactor) -> dict[str, Any]:
    """Send (with an OAuth2 token when the auth says so) and read the answer. Returns the
    record on an expected status, else raises ActionFailed."""
    try:
        if req.grant is None:
            record = await _send_once(spec, req, redactor)
        else:

            async def with_bearer(token: str) -> dict[str, Any]:
                headers = {**req.headers, "Authorization": f"Bearer {token}"}
                return await _send_once(spec, replace(req, headers=headers), redactor)

            record = await oauth2.with_token(req.grant, redactor, spec.timeout, with_bearer)
    except ActionFailed as exc:
        detail = spec.reply.explain(exc.result_data) if spec.reply and exc.result_data else None
        if detail:
            raise ActionFailed(
                f"{exc}: {redactor.redact(detail)}",
                retryable=exc.retryable,
                result_data=exc.result_data,
            ) from None
        raise
    return spec.reply.done(record) if spec.reply else record


async def _send_once(spec: HttpSpec, req: Request, redactor: Redactor) -> dict[str, Any]:
    install_log_filter()
    url = _check(req, redactor)
    sensitive = list(req.sensitive)
    if url.userinfo:  # httpx sends a URL's user:password as basic auth
        sensitive.append(basic_token(url.username, url.password))
    for value in sensitive:
        redactor.add(value)
        register_sensitive(value)
    shown_url = redactor.redact(req.url)
    started = time.monotonic()
    record: dict[str, Any] = {"kind": "http", "method": req.method, "url": shown_url}
    try:
        async with (
            httpx.AsyncClient(timeout=spec.timeout, follow_redirects=False) as client,
            client.stream(
                req.method,
                url,
                headers=req.headers,
                json=req.body if req.body is not None else None,
            ) as resp,
        ):
            keep = spec.body_bytes * 4 + 1024
            data = bytearray()
            async for chunk in resp.aiter_bytes():
                data += chunk
                if len(data) >= keep:
                    del data[keep:]
                    break
            status = resp.status_code
            reason = resp.reason_phrase
    except httpx.TimeoutException as exc:
        record["duration_seconds"] = round(time.monotonic() - started, 3)
        raise ActionFailed(
            f"timed out after {spec.timeout:g}s ({type(exc).__name__}) on {req.method} {shown_url}",
            retryable=True,
            result_data=record,
        ) from None
    except httpx.HTTPError as exc:
        record["duration_seconds"] = round(time.monotonic() - started, 3)
        detail = redactor.redact(f"{type(exc).__name__}: {exc}")
        raise ActionFailed(
            f"request failed ({detail}) on {req.method} {shown_url}",
            retryable=True,
            result_data=record,
        ) from None
    cut = len(data) >= keep  # the answer went on: what was read ends mid-answer
    # Not final when cut: a character cut in half at the end is left out, not replaced.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(data), final=not cut)
    body, shortened = redactor.head(text, spec.body_bytes, cut_end=cut)
    record.update(
        status=status,
        duration_seconds=round(time.monotonic() - started, 3),
        body=body,
        body_truncated=cut or shortened,
    )
    if spec.is_expected(status):
        return record
    message = f"HTTP {status} {reason} from {req.method} {shown_url}"
    if status >= 500:
        raise ActionFailed(message, retryable=True, result_data=record)
    if 400 <= status < 500:
        raise ActionFailed(
            message + " (client error: not retried)", retryable=False, result_data=record
        )
    raise ActionFailed(
        f"{message} (expected {spec._expected()})", retryable=False, result_data=record
    )
