"""Webhook ``oauth2`` auth (client credentials) against a strict token endpoint and the fake
Jira and Linear on 127.0.0.1: one token per expiry, one refetch on a 401, and neither the
token nor the client secret anywhere Operator writes."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_core.errors import ActionFailed, ConfigError
from operator_core.model.types import ActionStatus
from operator_core.secrets import basic_token
from operator_core.subjects import oauth2
from operator_core.subjects.runbook import load_runbook_subject

from .conftest import Runbooks
from .fake_apis import LINEAR_TEAM, FakeApis, random_value, serve
from .helpers import engine, run_until_settled
from .leaks import encodings, find, nasty_secret, pieces

TOKEN_URL = "@URL@/oauth/token"
ACTIONS = f"""
[defaults]
retry = {{ max_retries = 2, backoff_min = 0.05, backoff_max = 0.05 }}

[actions.jira_oauth]
params.project = {{ type = "string", default = "OPS" }}
[actions.jira_oauth.auth]
type = "oauth2"
token_url = "{TOKEN_URL}"
client_id = "operator-client"
client_secret = "{{secret:CLIENT_SECRET}}"
scope = "write:jira-work"
audience = "api.atlassian.com"
[actions.jira_oauth.jira]
url = "@URL@"
project_key = "{{project}}"
issue_type = "Task"
summary = "{{ticket.title}} (from Operator)"

[actions.linear_oauth]
linear = {{ url = "@URL@/graphql", team_id = "{LINEAR_TEAM}", title = "from OAuth" }}
[actions.linear_oauth.auth]
type = "oauth2"
token_url = "{TOKEN_URL}"
client_id = "operator-client"
client_secret = "{{secret:CLIENT_SECRET}}"
client_auth = "body"
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def apis() -> Iterator[FakeApis]:
    with serve() as state:
        state.scope, state.audience = "write:jira-work", "api.atlassian.com"
        yield state


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(oauth2, "_now", clock)
    return clock


@pytest.fixture
def subject(runbooks: Runbooks, apis: FakeApis, monkeypatch):
    monkeypatch.setenv("OPERATOR_SECRET_CLIENT_SECRET", apis.client_secret)
    return runbooks.load(ACTIONS.replace("@URL@", apis.url))


def token_hits(apis: FakeApis) -> int:
    return apis.hits.get("/oauth/token", 0)


def bearers(apis: FakeApis, path: str) -> list[str]:
    return [r.headers["Authorization"] for r in apis.requests if r.path == path]


async def test_the_token_is_fetched_once_and_used_until_shortly_before_it_expires(
    subject, apis: FakeApis, clock: Clock, runbooks: Runbooks, tmp_path: Path
) -> None:
    async with engine(tmp_path / "ops.db", subject) as ex:
        ticket = await ex.open_ticket("Disk full")
        p = await ex.propose_action("jira_oauth", {}, reason="track", ticket_id=ticket.id)
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        [record] = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.COMPLETED, done.last_error
    assert record.result_data is not None and record.result_data["issue_key"] == "OPS-1"
    await runbooks.execute(subject, "jira_oauth")
    clock.now += apis.token_ttl - oauth2.MARGIN_SECONDS - 1  # type: ignore[operator]
    await runbooks.execute(subject, "jira_oauth")
    assert token_hits(apis) == 1
    clock.now += 2  # now within the margin: a new token
    await runbooks.execute(subject, "jira_oauth")
    assert token_hits(apis) == 2
    first, second = apis.issued
    assert bearers(apis, "/rest/api/2/issue") == [f"Bearer {first}"] * 3 + [f"Bearer {second}"]
    assert apis.problems == []


async def test_a_revoked_token_is_refetched_once_on_a_401(
    subject, apis: FakeApis, runbooks: Runbooks, tmp_path: Path
) -> None:
    await runbooks.execute(subject, "jira_oauth")
    apis.revoke_all()
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("jira_oauth", {}, reason="after revocation")
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        records = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.COMPLETED, done.last_error
    assert [r.success for r in records] == [True]  # one attempt: the refetch is inside it
    assert token_hits(apis) == 2
    first, second = apis.issued
    assert bearers(apis, "/rest/api/2/issue") == [
        f"Bearer {first}",
        f"Bearer {first}",
        f"Bearer {second}",
    ]


async def test_a_second_401_fails_the_action_without_looping(
    subject, apis: FakeApis, tmp_path: Path
) -> None:
    apis.reject_tokens = True
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("jira_oauth", {}, reason="no grant")
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        [record] = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.FAILED
    assert "HTTP 401" in (record.error_message or "")
    assert token_hits(apis) == 2 and len(bearers(apis, "/rest/api/2/issue")) == 2


async def test_refused_client_credentials_fail_at_once_with_the_oauth_error(
    subject, apis: FakeApis, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OPERATOR_SECRET_CLIENT_SECRET", random_value())
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("jira_oauth", {}, reason="bad secret")
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        [record] = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.FAILED
    message = record.error_message or ""
    assert "OAuth2 token request" in message and "HTTP 401" in message
    assert "invalid_client" in message
    assert record.result_data == {
        "kind": "oauth2",
        "token_url": f"{apis.url}/oauth/token",
        "status": 401,
    }
    assert token_hits(apis) == 1 and bearers(apis, "/rest/api/2/issue") == []


async def test_client_credentials_in_the_form_body_and_a_bearer_for_linear(
    subject, apis: FakeApis, runbooks: Runbooks
) -> None:
    apis.client_auth = "body"
    apis.scope = apis.audience = None
    result = await runbooks.execute(subject, "linear_oauth")
    assert result is not None and result["identifier"] == "ENG-1"
    assert bearers(apis, "/graphql") == [f"Bearer {apis.issued[0]}"]
    assert apis.problems == []


async def test_a_token_endpoint_that_is_down_is_a_retryable_failure(
    runbooks: Runbooks, apis: FakeApis, closed_port: int, monkeypatch
) -> None:
    monkeypatch.setenv("OPERATOR_SECRET_CLIENT_SECRET", apis.client_secret)
    subject = runbooks.load(
        ACTIONS.replace(TOKEN_URL, f"http://127.0.0.1:{closed_port}/token").replace(
            "@URL@", apis.url
        )
    )
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "jira_oauth")
    assert info.value.retryable and "OAuth2 token request" in str(info.value)


def test_the_preview_names_the_token_url_not_a_token(subject, apis: FakeApis) -> None:
    preview = subject.preview("jira_oauth", {})
    assert preview is not None
    assert f"Authorization: Bearer <OAuth2 token from {apis.url}/oauth/token>" in preview
    assert apis.requests == []  # a preview fetches nothing


CLIENT_SECRET = nasty_secret()


async def test_token_and_client_secret_never_reach_records_audit_logs_errors_or_disk(
    runbooks: Runbooks, apis: FakeApis, tmp_path: Path, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    apis.client_secret = CLIENT_SECRET
    apis.echo_secret_in_token_error = True
    apis.echo_auth_in_jira_errors = True
    monkeypatch.setenv("OPERATOR_SECRET_CLIENT_SECRET", CLIENT_SECRET)
    subject = runbooks.load(ACTIONS.replace("@URL@", apis.url))
    db = tmp_path / "ops.db"
    outcomes = []
    async with engine(db, subject) as ex:

        async def run(action: str, params: dict[str, str]) -> int:
            p = await ex.propose_action(action, params, reason="leak test")
            assert p.id is not None
            outcomes.append((await run_until_settled(ex, p.id)).status)
            return p.id

        ids = [await run("jira_oauth", {})]
        ids.append(await run("jira_oauth", {"project": "NOPE"}))  # Jira echoes the bearer
        apis.revoke_all()
        ids.append(await run("jira_oauth", {}))  # 401, then a new token
        oauth2.clear()
        apis.client_auth = "body"  # we send basic: the server echoes our basic header
        ids.append(await run("jira_oauth", {}))
        apis.client_auth = "basic"  # we send the secret in the body: echoed as is
        ids.append(await run("linear_oauth", {}))
        records = [r for pid in ids for r in await ex.db.list_records(pid)]
        proposals = [await ex.db.get_proposal(pid) for pid in ids]
        audit = await ex.db.list_audit_events(limit=10_000)
    assert outcomes == [
        ActionStatus.COMPLETED,
        ActionStatus.FAILED,
        ActionStatus.COMPLETED,
        ActionStatus.FAILED,
        ActionStatus.FAILED,
    ]
    # the credentials were really used, and really echoed back
    assert len(apis.issued) == 2
    assert any("you sent Bearer" in (r.error_message or "") for r in records)
    assert sum("Client authentication failed for" in (r.error_message or "") for r in records) == 2

    basic = basic_token(apis.client_id, urllib.parse.quote_plus(CLIENT_SECRET))
    forms = encodings(CLIENT_SECRET) | encodings(basic)
    for token in apis.issued:
        forms |= encodings(token)
    needles = pieces(forms)
    dump = json.dumps(
        {
            "records": [r.model_dump(mode="json") for r in records],
            "proposals": [p.model_dump(mode="json") for p in proposals if p is not None],
            "audit": [e.model_dump(mode="json") for e in audit],
        }
    )
    assert find(dump.encode(), needles) == [], "records, proposals or audit events"
    assert find(caplog.text.encode(), needles) == [], "captured logs"
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert find(messages.encode(), needles) == [], "captured log messages"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert find(path.read_bytes(), needles) == [], f"written to {path}"


HEADER = """
[actions.a]
jira = { url = "https://acme.example", project_key = "OPS", issue_type = "Bug", summary = "s" }
params.p.type = "string"
[actions.a.auth]
type = "oauth2"
"""
BASE = {
    "token_url": '"https://auth.example.com/oauth/token"',
    "client_id": '"operator"',
    "client_secret": '"{secret:CLIENT_SECRET}"',
}


def oauth_file(**changes: str | None) -> str:
    fields = {**BASE, **changes}
    return HEADER + "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (oauth_file(token_url=None), "auth.token_url", "needs token_url"),
        (oauth_file(client_id=None), "auth.client_id", "needs client_id"),
        (oauth_file(client_secret=None), "auth.client_secret", "needs client_secret"),
        (oauth_file(client_secret='"s3cret"'), "auth.client_secret", "from a secret"),
        (oauth_file(token_url='"ftp://auth"'), "auth.token_url", "http://"),
        (oauth_file(token_url='"https://{p}.example.com/t"'), "auth.token_url", "parameter"),
        (oauth_file(client_id='"{p}"'), "auth.client_id", "not a parameter"),
        (oauth_file(client_id='"{ticket.title}"'), "auth.client_id", "ticket"),
        (oauth_file(client_auth='"jwt"'), "auth.client_auth", "basic"),
        (oauth_file(scope="1"), "auth.scope", "must be a string"),
        (oauth_file(token='"{secret:T}"'), "auth.token", "unknown key"),
    ],
)
def test_a_bad_oauth2_block_is_one_line_naming_file_action_and_field(
    runbooks: Runbooks, text: str, field: str, problem: str
) -> None:
    path = runbooks.write(text)
    with pytest.raises(ConfigError) as info:
        load_runbook_subject(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path.resolve()}: action 'a'")
    assert f"field '{field}'" in message and problem in message


async def test_actions_started_together_share_one_token_request(
    subject, apis: FakeApis, runbooks: Runbooks
) -> None:
    apis.token_delay = 0.3
    results = await asyncio.gather(*(runbooks.execute(subject, "jira_oauth") for _ in range(4)))
    assert sorted(r["issue_key"] for r in results if r) == ["OPS-1", "OPS-2", "OPS-3", "OPS-4"]
    assert token_hits(apis) == 1
    assert set(bearers(apis, "/rest/api/2/issue")) == {f"Bearer {apis.issued[0]}"}


async def test_a_token_refused_by_many_actions_at_once_is_replaced_once(
    subject, apis: FakeApis, runbooks: Runbooks
) -> None:
    await runbooks.execute(subject, "jira_oauth")
    apis.revoke_all()
    apis.token_delay = 0.2
    await asyncio.gather(*(runbooks.execute(subject, "jira_oauth") for _ in range(4)))
    assert token_hits(apis) == 2
