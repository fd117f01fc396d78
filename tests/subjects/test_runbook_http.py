"""Webhook actions against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json

import pytest
from operator_core.errors import ActionFailed
from operator_core.model.types import ActionStatus, Ticket

from .conftest import HttpServer, Runbooks
from .helpers import engine, run_until_settled

ACTIONS = """
[defaults]
timeout = 2
retry = { max_retries = 2, backoff_min = 0.05, backoff_max = 0.1 }

[actions.ok]
url = "@URL@/ok"

[actions.echo]
method = "PUT"
url = "@URL@/echo/{path}?q={query}"
headers = { X-Request-Id = "req-{count}" }
[actions.echo.body]
text = "count is {count}"
count = "{count}"
enabled = "{enabled}"
ratio = "{ratio}"
nested = { list = ["{query}", 1, true], literal = "{{braces}}" }
[actions.echo.body.ticket]
id = "{ticket.id}"
title = "{ticket.title}"
line = "{ticket.severity}: {ticket.summary}"
[actions.echo.params.path]
type = "string"
default = "a"
[actions.echo.params.query]
type = "string"
default = "b"
[actions.echo.params.count]
type = "integer"
default = 3
[actions.echo.params.enabled]
type = "boolean"
default = true
[actions.echo.params.ratio]
type = "number"
default = 1.5

[actions.header_param]
url = "@URL@/ok"
headers = { X-Note = "{note}" }
[actions.header_param.params.note]
type = "string"

[actions.flaky]
url = "@URL@/flaky"

[actions.down]
url = "@URL@/down"

[actions.missing]
url = "@URL@/missing"
retry = { max_retries = 3 }

[actions.slow]
method = "GET"
url = "@URL@/slow"
timeout = 0.3

[actions.refused]
url = "http://127.0.0.1:@CLOSED@/nothing"

[actions.big]
method = "GET"
url = "@URL@/big"

[actions.redirect]
method = "GET"
url = "@URL@/redirect"

[actions.created_only]
url = "@URL@/ok"
expect_status = [201]

[actions.created]
url = "@URL@/created"
expect_status = [201]

[actions.bearer]
url = "@URL@/auth"
auth = { type = "bearer", token = "{secret:API_TOKEN}" }

[actions.basic]
url = "@URL@/auth"
auth = { type = "basic", username = "ops", password = "{secret:API_PASSWORD}" }

[actions.custom]
url = "@URL@/auth"
auth = { type = "custom", header = "X-Api-Key", value = "key-{secret:API_TOKEN}" }
"""


@pytest.fixture
def subject(runbooks: Runbooks, http_server: HttpServer, closed_port: int, monkeypatch):
    monkeypatch.setenv("OPERATOR_SECRET_API_TOKEN", "tok-123")
    monkeypatch.setenv("OPERATOR_SECRET_API_PASSWORD", "pa:ss")
    return runbooks.load(
        ACTIONS.replace("@URL@", http_server.url).replace("@CLOSED@", str(closed_port))
    )


async def test_success_records_status_duration_and_body(runbooks, subject, http_server) -> None:
    result = await runbooks.execute(subject, "ok")
    assert result is not None
    assert result["status"] == 200
    assert json.loads(result["body"]) == {"ok": True}
    assert result["body_truncated"] is False
    assert 0 <= result["duration_seconds"] < 2
    assert result["method"] == "POST" and result["url"] == f"{http_server.url}/ok"


async def test_body_template_keeps_types_and_fills_ticket_fields(
    runbooks, subject, http_server
) -> None:
    ticket = Ticket(id=42, title="Disk full", summary="/var at 99%", severity="high")
    await runbooks.execute(subject, "echo", {"count": 5, "enabled": False}, ticket=ticket)
    [seen] = http_server.requests
    assert seen.method == "PUT"
    assert seen.headers["X-Request-Id"] == "req-5"
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {
        "text": "count is 5",
        "count": 5,
        "enabled": False,
        "ratio": 1.5,
        "nested": {"list": ["b", 1, True], "literal": "{braces}"},
        "ticket": {"id": 42, "title": "Disk full", "line": "high: /var at 99%"},
    }


async def test_without_a_ticket_ticket_fields_are_null_or_empty(
    runbooks, subject, http_server
) -> None:
    await runbooks.execute(subject, "echo")
    body = json.loads(http_server.requests[0].body)
    assert body["ticket"] == {"id": None, "title": None, "line": ": "}


async def test_parameters_cannot_change_the_url_structure(runbooks, subject, http_server) -> None:
    await runbooks.execute(subject, "echo", {"path": "../admin?x=1#", "query": "a&b=c d"})
    [seen] = http_server.requests
    assert seen.path == "/echo/..%2Fadmin%3Fx%3D1%23?q=a%26b%3Dc%20d"


async def test_parameters_cannot_inject_headers(runbooks, subject, http_server) -> None:
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "header_param", {"note": "x\r\nX-Evil: 1"})
    assert not info.value.retryable
    assert http_server.requests == []


async def test_500_then_200_is_retried_through_the_runner(
    runbooks, subject, http_server, tmp_path
) -> None:
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("flaky", {}, reason="retry on 5xx")
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        records = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.COMPLETED
    assert [r.success for r in records] == [False, True]
    assert records[0].error_message is not None and "HTTP 500" in records[0].error_message
    assert records[0].result_data is not None and records[0].result_data["status"] == 500
    assert records[1].result_data is not None and records[1].result_data["status"] == 200
    assert http_server.hits["flaky"] == 2


async def test_404_fails_at_once_without_retries(runbooks, subject, http_server, tmp_path) -> None:
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("missing", {}, reason="no retry on 4xx")
        assert p.id is not None and p.max_retries == 3
        done = await run_until_settled(ex, p.id)
        records = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.FAILED
    assert len(records) == 1 and http_server.hits["missing"] == 1
    assert records[0].error_message is not None and "HTTP 404" in records[0].error_message


@pytest.mark.parametrize("action", ["down", "slow", "refused"])
async def test_5xx_timeouts_and_connection_errors_are_retryable(
    runbooks, subject, action: str
) -> None:
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, action)
    assert info.value.retryable, str(info.value)


async def test_a_slow_server_times_out_at_the_action_timeout(runbooks, subject) -> None:
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "slow")
    assert "timed out after 0.3s" in str(info.value)


@pytest.mark.parametrize("action", ["redirect", "created_only"])
async def test_unexpected_statuses_fail_for_good(runbooks, subject, action: str) -> None:
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, action)
    assert not info.value.retryable


async def test_expected_status_list_is_honoured(runbooks, subject) -> None:
    result = await runbooks.execute(subject, "created")
    assert result is not None and result["status"] == 201


async def test_response_body_is_capped(runbooks, subject) -> None:
    result = await runbooks.execute(subject, "big")
    assert result is not None
    assert len(result["body"]) == 4096 and result["body_truncated"] is True


@pytest.mark.parametrize(
    ("action", "header", "value"),
    [
        ("bearer", "Authorization", "Bearer tok-123"),
        ("basic", "Authorization", "Basic " + base64.b64encode(b"ops:pa:ss").decode()),
        ("custom", "X-Api-Key", "key-tok-123"),
    ],
)
async def test_auth_header_reaches_the_server(
    runbooks, subject, http_server, action: str, header: str, value: str
) -> None:
    http_server.expected_auth = {header: value}
    result = await runbooks.execute(subject, action)
    assert result is not None and result["status"] == 200
    assert http_server.requests[0].headers[header] == value
    # the server echoes the header back; the record must not show it
    assert "tok-123" not in result["body"] and "pa:ss" not in result["body"]
    assert base64.b64encode(b"ops:pa:ss").decode() not in result["body"]


async def test_wrong_credentials_are_a_4xx_failure(runbooks, subject, http_server) -> None:
    http_server.expected_auth = {"Authorization": "Bearer something-else"}
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "bearer")
    assert not info.value.retryable and "HTTP 401" in str(info.value)


async def test_missing_secret_fails_for_good_with_a_hint(
    runbooks, subject, http_server, monkeypatch
) -> None:
    monkeypatch.delenv("OPERATOR_SECRET_API_TOKEN")
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "bearer")
    assert not info.value.retryable
    assert "operator secrets set API_TOKEN" in str(info.value)
    assert http_server.requests == []


def test_preview_shows_the_request_with_secrets_as_placeholders(subject, http_server) -> None:
    preview = subject.preview("bearer", {})
    assert preview is not None
    assert preview.splitlines()[0] == f"POST {http_server.url}/auth"
    assert "Authorization: Bearer {secret:API_TOKEN}" in preview
    assert "tok-123" not in preview
    basic = subject.preview("basic", {})
    assert basic is not None and "Basic <base64 of ops:{secret:API_PASSWORD}>" in basic
    body = subject.preview("echo", {"count": 9})
    assert body is not None
    assert '"count": 9' in body and '"title": "{ticket.title}"' in body
