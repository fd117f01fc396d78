"""OAuth2 client credentials for webhook auth (RFC 6749 section 4.4).

The access token is fetched from the token URL, kept in this process's memory until shortly
before it expires, and fetched again once when the API answers 401. It is never written to
disk, a record, the audit log or a log line: each use adds it to the attempt's redactor and
to the process-wide log filter, as a resolved secret is.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from operator_core.errors import ActionFailed
from operator_core.redaction import Redactor
from operator_core.secrets import basic_token, register_sensitive
from operator_core.subjects.runbook_fields import FieldCtx
from operator_core.subjects.templates import RenderContext, Template, render

KEYS = {"type", "token_url", "client_id", "client_secret", "scope", "audience", "client_auth"}
CLIENT_AUTH = ("basic", "body")
# A token is dropped this long before the server says it expires, so a request never leaves
# with a token that dies on the way.
MARGIN_SECONDS = 30.0
# How long a token is kept when the server does not say (expires_in is only RECOMMENDED).
DEFAULT_TTL_SECONDS = 300.0
TOKEN_PLACEHOLDER = "{oauth2 token}"
_ERROR_TEXT = 200


@dataclass(frozen=True)
class Grant:
    """The rendered client credentials of one request."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None
    audience: str | None
    client_auth: str

    @property
    def key(self) -> tuple[str, ...]:
        # The secret is part of the key (a rotated secret needs a new token) as a digest,
        # so the cache holds no second copy of it.
        digest = hashlib.sha256(self.client_secret.encode()).hexdigest()
        return (self.token_url, self.client_id, digest, self.scope or "", self.audience or "")


@dataclass(frozen=True)
class OAuth2Spec:
    token_url: Template
    client_id: Template
    client_secret: Template
    scope: str | None = None
    audience: str | None = None
    client_auth: str = "basic"

    @property
    def templates(self) -> list[Template]:
        return [self.token_url, self.client_id, self.client_secret]

    def render(self, ctx: RenderContext) -> Grant:
        return Grant(
            token_url=render(self.token_url, ctx),
            client_id=render(self.client_id, ctx),
            client_secret=render(self.client_secret, ctx),
            scope=self.scope,
            audience=self.audience,
            client_auth=self.client_auth,
        )

    def preview(self, ctx: RenderContext) -> str:
        return f"Bearer <OAuth2 token from {render(self.token_url, ctx)}>"


def parse(ctx: FieldCtx, auth: dict[str, Any]) -> OAuth2Spec:
    """The ``auth = { type = "oauth2", ... }`` table. Every value is fixed by the file: a
    parameter or ticket field could otherwise send the client secret elsewhere."""
    ctx.keys(auth, KEYS, "auth")
    for key in ("token_url", "client_id", "client_secret"):
        if key not in auth:
            raise ctx.error(f"auth.{key}", f"oauth2 auth needs {key}")
    token_url = ctx.url(auth["token_url"], "auth.token_url", [])
    if any(r.kind == "ticket" for r in token_url.refs):
        raise ctx.error("auth.token_url", "may hold only text and {secret:...}")
    client_secret = ctx.fixed(auth["client_secret"], "auth.client_secret")
    if not client_secret.secrets:
        raise ctx.error(
            "auth.client_secret",
            'credentials must come from a secret, e.g. "{secret:OAUTH_CLIENT_SECRET}", '
            "never from the file itself",
        )
    optional = {}
    for key in ("scope", "audience"):
        if key in auth:
            optional[key] = ctx.string(auth[key], f"auth.{key}")
    client_auth = ctx.string(auth.get("client_auth", "basic"), "auth.client_auth")
    if client_auth not in CLIENT_AUTH:
        raise ctx.error(
            "auth.client_auth",
            f"unknown client_auth {client_auth!r} (use basic, the HTTP Basic header, or "
            "body, client_id and client_secret in the form)",
        )
    return OAuth2Spec(
        token_url=token_url,
        client_id=ctx.fixed(auth["client_id"], "auth.client_id"),
        client_secret=client_secret,
        client_auth=client_auth,
        **optional,
    )


# token by Grant.key: (token, monotonic time it stops being used)
_tokens: dict[tuple[str, ...], tuple[str, float]] = {}
# token requests under way by Grant.key: actions that start together share one
_fetching: dict[tuple[str, ...], asyncio.Task[str]] = {}
_now: Callable[[], float] = time.monotonic


def forget(grant: Grant, value: str) -> None:
    """Drop ``value`` (refused by the API), unless a newer token has replaced it."""
    if _tokens.get(grant.key, ("", 0.0))[0] == value:
        del _tokens[grant.key]


def clear() -> None:
    """Forget every token (tests; a process that rotates all its credentials)."""
    _tokens.clear()
    _fetching.clear()


def _hide(value: str, redactor: Redactor) -> None:
    redactor.add(value, TOKEN_PLACEHOLDER)
    register_sensitive(value)


async def token(grant: Grant, redactor: Redactor, seconds: float) -> str:
    """A valid access token for ``grant``: the cached one, or a new one."""
    cached = _tokens.get(grant.key)
    if cached is not None and _now() < cached[1]:
        _hide(cached[0], redactor)
        return cached[0]
    task = _fetching.get(grant.key)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.create_task(_fetch_and_keep(grant, redactor, seconds))
        _fetching[grant.key] = task
        task.add_done_callback(lambda done: _fetched(grant.key, done))
    # Shielded: one waiter cancelled (the kill switch) does not fail the others.
    value = await asyncio.shield(task)
    _hide(value, redactor)
    return value


async def _fetch_and_keep(grant: Grant, redactor: Redactor, seconds: float) -> str:
    value, ttl = await _fetch(grant, redactor, seconds)
    if ttl > MARGIN_SECONDS:
        _tokens[grant.key] = (value, _now() + ttl - MARGIN_SECONDS)
    return value


def _fetched(key: tuple[str, ...], task: asyncio.Task[str]) -> None:
    if _fetching.get(key) is task:
        del _fetching[key]
    if not task.cancelled():
        task.exception()  # retrieved here too, in case every waiter was cancelled


async def _fetch(grant: Grant, redactor: Redactor, seconds: float) -> tuple[str, float]:
    form = {"grant_type": "client_credentials"}
    headers = {"Accept": "application/json"}
    if grant.client_auth == "basic":
        # RFC 6749 2.3.1: both are form-encoded before they are joined and base64'd.
        basic = basic_token(
            urllib.parse.quote_plus(grant.client_id), urllib.parse.quote_plus(grant.client_secret)
        )
        _hide(basic, redactor)
        headers["Authorization"] = f"Basic {basic}"
    else:
        form |= {"client_id": grant.client_id, "client_secret": grant.client_secret}
    if grant.scope:
        form["scope"] = grant.scope
    if grant.audience:
        form["audience"] = grant.audience
    shown = redactor.redact(grant.token_url)
    record: dict[str, Any] = {"kind": "oauth2", "token_url": shown}
    try:
        async with httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client:
            resp = await client.post(grant.token_url, data=form, headers=headers)
    except httpx.TimeoutException:
        raise ActionFailed(
            f"OAuth2 token request to {shown} timed out", retryable=True, result_data=record
        ) from None
    except httpx.HTTPError as exc:
        detail = redactor.redact(f"{type(exc).__name__}: {exc}")
        raise ActionFailed(
            f"OAuth2 token request to {shown} failed ({detail})",
            retryable=True,
            result_data=record,
        ) from None
    record["status"] = resp.status_code
    try:
        data = resp.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    access = data.get("access_token")
    if isinstance(access, str) and access:
        _hide(access, redactor)  # before anything below can put it into text
    if resp.status_code != 200:
        message = f"OAuth2 token request to {shown}: HTTP {resp.status_code}"
        error = " ".join(
            str(data[k])[:_ERROR_TEXT] for k in ("error", "error_description") if k in data
        )
        if error:
            message += f" ({redactor.redact(error)})"
        retryable = resp.status_code >= 500 or resp.status_code == 429
        raise ActionFailed(message, retryable=retryable, result_data=record)
    if not isinstance(access, str) or not access:
        raise ActionFailed(
            f"OAuth2 token request to {shown}: the answer has no access_token",
            retryable=False,
            result_data=record,
        )
    kind = data.get("token_type", "Bearer")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        raise ActionFailed(
            f"OAuth2 token request to {shown}: token_type {str(kind)[:40]!r} is not Bearer",
            retryable=False,
            result_data=record,
        )
    expires = data.get("expires_in", DEFAULT_TTL_SECONDS)
    try:
        ttl = float(expires)
    except (TypeError, ValueError):
        ttl = DEFAULT_TTL_SECONDS
    return access, ttl


async def with_token(
    grant: Grant,
    redactor: Redactor,
    seconds: float,
    send: Callable[[str], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """``send(token)`` with a valid token; on a 401, forget the token and send once more
    with a new one (it may have been revoked before its time)."""
    bearer = await token(grant, redactor, seconds)  # a refused grant is not retried here
    try:
        return await send(bearer)
    except ActionFailed as exc:
        if (exc.result_data or {}).get("status") != 401:
            raise
    forget(grant, bearer)
    return await send(await token(grant, redactor, seconds))
