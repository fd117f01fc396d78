"""Runbook ``jira`` actions against a strict fake of Jira's REST API on 127.0.0.1, end to
end: propose, approve, run, record."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_core.errors import ConfigError
from operator_core.model.types import ActionStatus
from operator_core.subjects.runbook import load_runbook_subject

from .conftest import Runbooks
from .fake_apis import JIRA_EMAIL, FakeApis, random_value, serve
from .helpers import engine, run_until_settled

ACTIONS = """
[actions.jira_incident]
description = "Open a Jira incident for the ticket"
requires_approval = true
auth = { type = "basic", username = "ops@example.com", password = "{secret:JIRA_API_TOKEN}" }
retry = { max_retries = 2, backoff_min = 0.05, backoff_max = 0.05 }
[actions.jira_incident.jira]
url = "@URL@/"
project_key = "OPS"
issue_type = "Incident"
summary = "[{ticket.severity}] {ticket.title}"
description = "{ticket.summary}\\n\\nOpened by Operator for ticket {ticket.id}."
priority = "{priority}"
labels = ["operator", "{service}", "{extra}"]
[actions.jira_incident.params.priority]
type = "enum"
choices = ["Highest", "High", "Medium", "Low"]
default = "High"
[actions.jira_incident.params.service]
type = "string"
pattern = "[a-z0-9-]+"
[actions.jira_incident.params.extra]
type = "string"
required = false

[actions.jira_v3]
auth = { type = "basic", username = "ops@example.com", password = "{secret:JIRA_API_TOKEN}" }
params.title.type = "string"
params.text = { type = "string", default = "" }
[actions.jira_v3.jira]
url = "@URL@"
api_version = 3
project_key = "OPS"
issue_type = "Task"
summary = "{title}"
description = "{text}"

[actions.jira_anywhere]
auth = { type = "basic", username = "ops@example.com", password = "{secret:JIRA_API_TOKEN}" }
retry = { max_retries = 3, backoff_min = 0.05, backoff_max = 0.05 }
jira = { url = "@URL@", project_key = "{project}", issue_type = "{kind}", summary = "x" }
params.project.type = "string"
params.kind = { type = "string", default = "Task" }
"""


@pytest.fixture
def apis() -> Iterator[FakeApis]:
    with serve() as state:
        yield state


@pytest.fixture
def subject(runbooks: Runbooks, apis: FakeApis, monkeypatch):
    monkeypatch.setenv("OPERATOR_SECRET_JIRA_API_TOKEN", apis.jira_token)
    return runbooks.load(ACTIONS.replace("@URL@", apis.url))


async def test_an_approved_jira_action_creates_the_issue_and_records_its_key(
    subject, apis: FakeApis, tmp_path: Path
) -> None:
    async with engine(tmp_path / "ops.db", subject) as ex:
        ticket = await ex.open_ticket("Checkout down", "502 from every pod", severity="high")
        p = await ex.propose_action(
            "jira_incident", {"service": "checkout"}, reason="track it", ticket_id=ticket.id
        )
        assert p.id is not None and p.awaiting_approval
        assert apis.requests == []  # nothing is sent before a human approves
        await ex.approve_proposal(p.id, "oncall@example.com")
        done = await run_until_settled(ex, p.id)
        [record] = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.COMPLETED, done.last_error
    assert apis.problems == []
    [seen] = apis.requests
    assert (seen.method, seen.path) == ("POST", "/rest/api/2/issue")
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Accept"] == "application/json"
    token = base64.b64encode(f"{JIRA_EMAIL}:{apis.jira_token}".encode()).decode()
    assert seen.headers["Authorization"] == f"Basic {token}"
    assert json.loads(seen.body) == {
        "fields": {
            "project": {"key": "OPS"},
            "issuetype": {"name": "Incident"},
            "summary": "[high] Checkout down",
            "description": f"502 from every pod\n\nOpened by Operator for ticket {ticket.id}.",
            "priority": {"name": "High"},
            "labels": ["operator", "checkout"],  # the empty optional label is left out
        }
    }
    data = record.result_data
    assert data is not None
    assert data["kind"] == "jira" and data["status"] == 201
    assert data["issue_key"] == "OPS-1" and data["issue_id"] == "10001"
    assert data["issue_url"] == f"{apis.url}/browse/OPS-1"


async def test_api_version_3_sends_the_description_as_an_atlassian_document(
    runbooks: Runbooks, subject, apis: FakeApis
) -> None:
    result = await runbooks.execute(
        subject, "jira_v3", {"title": "Disk full", "text": "/var at 99%\nsince 02:00\n\nby cron"}
    )
    assert result is not None and result["issue_key"] == "OPS-1"
    await runbooks.execute(subject, "jira_v3", {"title": "No description"})
    assert apis.problems == []
    first, second = (json.loads(r.body)["fields"] for r in apis.requests)
    assert [r.path for r in apis.requests] == ["/rest/api/3/issue"] * 2
    assert first["description"] == {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "/var at 99%"},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "since 02:00"},
                ],
            },
            {"type": "paragraph", "content": [{"type": "text", "text": "by cron"}]},
        ],
    }
    assert "description" not in second  # ADF has no empty document: left out


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"project": "NOPE"}, "project: valid project is required"),
        ({"project": "OPS", "kind": "Story"}, "issuetype: Specify a valid issue type"),
    ],
)
async def test_jira_refusal_fails_at_once_with_jiras_own_words(
    subject, apis: FakeApis, tmp_path: Path, params: dict[str, str], words: str
) -> None:
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("jira_anywhere", params, reason="bad input")
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        records = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.FAILED
    assert len(records) == 1 and len(apis.requests) == 1  # a 400 is not retried
    message = records[0].error_message or ""
    assert "HTTP 400" in message and words in message
    assert records[0].result_data is not None and records[0].result_data["status"] == 400


async def test_a_wrong_api_token_fails_with_jiras_401_message(
    subject, apis: FakeApis, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OPERATOR_SECRET_JIRA_API_TOKEN", random_value())
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("jira_anywhere", {"project": "OPS"}, reason="auth")
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        [record] = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.FAILED
    assert "HTTP 401" in (record.error_message or "")
    assert "You are not authenticated" in (record.error_message or "")


def test_the_preview_shows_the_issue_request(subject, apis: FakeApis) -> None:
    preview = subject.preview("jira_incident", {"service": "api"})
    assert preview is not None
    lines = preview.splitlines()
    assert lines[0] == f"POST {apis.url}/rest/api/2/issue"
    assert "Authorization: Basic <base64 of ops@example.com:{secret:JIRA_API_TOKEN}>" in lines
    assert '"summary": "[{ticket.severity}] {ticket.title}"' in preview


HEADER = """
[actions.a]
auth = { type = "basic", username = "me@example.com", password = "{secret:T}" }
[actions.a.jira]
"""
BASE = {
    "url": '"https://acme.atlassian.net"',
    "project_key": '"OPS"',
    "issue_type": '"Bug"',
    "summary": '"s"',
}


def jira_file(header: str = HEADER, **changes: str | None) -> str:
    fields = {**BASE, **changes}
    return header + "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (jira_file(url='"ftp://acme"'), "jira.url", "http://"),
        (jira_file(url='"{site}"'), "jira.url", "not a parameter"),
        (jira_file(project_key='"ops"'), "jira.project_key", "not a Jira project key"),
        (jira_file(project_key="7"), "jira.project_key", "must be a string"),
        (jira_file(summary='"{nope}"'), "jira.summary", "not a parameter"),
        (jira_file(summary=None), "jira.summary", "needs summary"),
        (jira_file(project_key=None), "jira.project_key", "needs project_key"),
        (jira_file(api_version="4"), "jira.api_version", "2 or 3"),
        (jira_file(labels='"ops"'), "jira.labels", "array"),
        (jira_file(labels='["two words"]'), "jira.labels[0]", "without spaces"),
        (jira_file(assignee='"bob"'), "jira.assignee", "unknown key"),
        (jira_file(priority='["High"]'), "jira.priority", "must be a string"),
        (jira_file(HEADER.replace("auth = {", "# {")), "auth", "needs auth"),
        (
            jira_file(HEADER.replace('"{secret:T}"', '"hunter2"')),
            "auth.password",
            "from a secret",
        ),
        (
            jira_file(HEADER.replace('type = "basic"', 'type = "oauth"')),
            "auth.type",
            "unknown auth type",
        ),
        (
            jira_file(HEADER.replace("[actions.a.jira]", 'argv = ["ls"]\n[actions.a.jira]')),
            None,
            "not both",
        ),
    ],
)
def test_a_bad_jira_block_is_one_line_naming_file_action_and_field(
    runbooks: Runbooks, text: str, field: str | None, problem: str
) -> None:
    path = runbooks.write(text)
    with pytest.raises(ConfigError) as info:
        load_runbook_subject(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path.resolve()}: action 'a'")
    assert problem in message
    if field is not None:
        assert f"field '{field}'" in message
