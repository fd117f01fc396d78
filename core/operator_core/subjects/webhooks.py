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
from dataclasses import dataclass, field
from typing import Any

import httpx

from operator_core.errors import ActionFailed
from operator_core.safe_text import visible
from operator_core.secrets import Redactor, basic_token, install_log_filter, register_sensitive
from operator_core.subjects.templates import (
    RenderContext,
    Template,
    json_secrets,
    render,
    render_json,
)

BODY_BYTES = 4096
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
AUTH_TYPES = ("none", "bearer", "basic", "custom")


@dataclass(frozen=True)
class AuthSpec:
    type: str = "none"
    token: Template | None = None
    username: Template | None = None
    password: Template | None = None
    header: str = "Authorization"
    value: Template | None = None

    @property
    def templates(self) -> list[Template]:
        return [t for t in (self.token, self.username, self.password, self.value) if t]

    def render(self, ctx: RenderContext) -> tuple[str, str] | None:
        """The auth header (name, value), or None for type none."""
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
        return Request(self.method, render(self.url, ctx, encode=_quote), headers, body, sensitive)

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
    """Send once. Returns the record on an expected status, else raises ActionFailed."""
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
