"""Runbook ``linear`` actions against a strict fake of Linear's GraphQL API on 127.0.0.1,
end to end: propose, approve, run, record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_core.errors import ActionFailed, ConfigError
from operator_core.model.types import ActionStatus
from operator_core.subjects.runbook import load_runbook_subject

from .conftest import Runbooks
from .fake_apis import LINEAR_LABELS, LINEAR_TEAM, FakeApis, random_value, serve
from .helpers import engine, run_until_settled

LABEL_A, LABEL_B = sorted(LINEAR_LABELS)

ACTIONS = f"""
[defaults]
retry = {{ max_retries = 2, backoff_min = 0.05, backoff_max = 0.05 }}

[actions.linear_issue]
description = "Open a Linear issue for the ticket"
requires_approval = true
[actions.linear_issue.linear]
url = "@URL@/graphql"
api_key = "{{secret:LINEAR_API_KEY}}"
team_id = "{LINEAR_TEAM}"
title = "[{{ticket.severity}}] {{ticket.title}}"
description = "{{ticket.summary}}\\n\\nticket {{ticket.id}}"
priority = "{{urgency}}"
label_ids = ["{LABEL_A}", "{{label}}"]
[actions.linear_issue.params.urgency]
type = "integer"
choices = [1, 2, 3]
default = 2
[actions.linear_issue.params.label]
type = "string"
required = false

[actions.linear_plain]
params.team = {{ type = "string", default = "{LINEAR_TEAM}" }}
params.title = {{ type = "string", default = "t" }}
[actions.linear_plain.linear]
url = "@URL@/graphql"
api_key = "{{secret:LINEAR_API_KEY}}"
team_id = "{{team}}"
title = "{{title}}"
priority = 0
"""


@pytest.fixture
def apis() -> Iterator[FakeApis]:
    with serve() as state:
        yield state


@pytest.fixture
def subject(runbooks: Runbooks, apis: FakeApis, monkeypatch):
    monkeypatch.setenv("OPERATOR_SECRET_LINEAR_API_KEY", apis.linear_key)
    return runbooks.load(ACTIONS.replace("@URL@", apis.url))


async def test_an_approved_linear_action_creates_the_issue_and_records_its_identifier(
    subject, apis: FakeApis, tmp_path: Path
) -> None:
    async with engine(tmp_path / "ops.db", subject) as ex:
        ticket = await ex.open_ticket("Queue backlog", "10k jobs waiting", severity="high")
        p = await ex.propose_action(
            "linear_issue", {"urgency": 1, "label": LABEL_B}, reason="track", ticket_id=ticket.id
        )
        assert p.id is not None and p.awaiting_approval
        assert apis.requests == []
        await ex.approve_proposal(p.id, "oncall@example.com")
        done = await run_until_settled(ex, p.id)
        [record] = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.COMPLETED, done.last_error
    assert apis.problems == []
    [seen] = apis.requests
    assert (seen.method, seen.path) == ("POST", "/graphql")
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Authorization"] == apis.linear_key  # a personal key: no "Bearer"
    body = json.loads(seen.body)
    assert "issueCreate(input: $input)" in body["query"]
    assert body["variables"] == {
        "input": {
            "teamId": LINEAR_TEAM,
            "title": "[high] Queue backlog",
            "description": f"10k jobs waiting\n\nticket {ticket.id}",
            "priority": 1,
            "labelIds": [LABEL_A, LABEL_B],
        }
    }
    data = record.result_data
    assert data is not None and data["kind"] == "linear" and data["status"] == 200
    assert data["identifier"] == "ENG-1"
    assert data["issue_url"] == "https://linear.app/acme/issue/ENG-1/x"
    assert data["issue_id"].startswith("2174add1-")


async def test_an_empty_optional_label_is_left_out(
    runbooks: Runbooks, subject, apis: FakeApis
) -> None:
    await runbooks.execute(subject, "linear_issue")
    [seen] = apis.requests
    assert json.loads(seen.body)["variables"]["input"]["labelIds"] == [LABEL_A]


async def test_graphql_errors_in_a_200_answer_fail_the_action_without_retries(
    subject, apis: FakeApis, tmp_path: Path
) -> None:
    async with engine(tmp_path / "ops.db", subject) as ex:
        p = await ex.propose_action("linear_plain", {"team": "no-such-team"}, reason="bad team")
        assert p.id is not None
        done = await run_until_settled(ex, p.id)
        records = await ex.db.list_records(p.id)
    assert done.status == ActionStatus.FAILED
    assert len(records) == 1 and len(apis.requests) == 1
    [record] = records
    assert record.result_data is not None and record.result_data["status"] == 200
    assert "Could not find referenced Team." in (record.error_message or "")
    assert apis.problems == []


async def test_a_wrong_api_key_fails_with_linears_message(
    runbooks: Runbooks, subject, apis: FakeApis, monkeypatch
) -> None:
    monkeypatch.setenv("OPERATOR_SECRET_LINEAR_API_KEY", random_value("lin_api_"))
    with pytest.raises(ActionFailed) as info:
        await runbooks.execute(subject, "linear_plain")
    assert not info.value.retryable
    assert "HTTP 400" in str(info.value)
    assert "You need to authenticate" in str(info.value)


async def test_priority_zero_and_types_reach_linear_as_graphql_wants_them(
    runbooks: Runbooks, subject, apis: FakeApis
) -> None:
    result = await runbooks.execute(subject, "linear_plain", {"title": "123"})
    assert result is not None and result["identifier"] == "ENG-1"
    issue = json.loads(apis.requests[0].body)["variables"]["input"]
    assert issue == {"teamId": LINEAR_TEAM, "title": "123", "description": "", "priority": 0}
    assert apis.problems == []


HEADER = """
[actions.a]
[actions.a.linear]
"""
BASE = {"api_key": '"{secret:LINEAR_API_KEY}"', "team_id": '"team"', "title": '"t"'}


def linear_file(header: str = HEADER, **changes: str | None) -> str:
    fields = {**BASE, **changes}
    return header + "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (linear_file(priority="5"), "linear.priority", "0 to 4"),
        (linear_file(priority="-1"), "linear.priority", "0 to 4"),
        (linear_file(priority='"high"'), "linear.priority", "integer parameter"),
        (linear_file(priority="true"), "linear.priority", "integer 0 to 4"),
        (
            linear_file(
                '[actions.a]\nparams.p.type = "integer"\n[actions.a.linear]\n',
                priority='"{p}"',
            ),
            "linear.priority",
            "choices within 0 to 4",
        ),
        (
            linear_file(
                '[actions.a]\nparams.p = { type = "integer", choices = [1, 9] }\n'
                "[actions.a.linear]\n",
                priority='"{p}"',
            ),
            "linear.priority",
            "choices within 0 to 4",
        ),
        (
            linear_file(
                '[actions.a]\nparams.p = { type = "string", choices = ["1"] }\n'
                "[actions.a.linear]\n",
                priority='"{p}"',
            ),
            "linear.priority",
            "integer parameter",
        ),
        (linear_file(team_id=None), "linear.team_id", "needs team_id"),
        (linear_file(title=None), "linear.title", "needs title"),
        (linear_file(title='"{nope}"'), "linear.title", "not a parameter"),
        (linear_file(api_key='"lin_api_123"'), "linear.api_key", "from a secret"),
        (linear_file(api_key=None), "linear.api_key", "needs api_key"),
        (linear_file(api_key='"{secret:K} {ticket.title}"'), "linear.api_key", "ticket"),
        (linear_file(label_ids='"x"'), "linear.label_ids", "array"),
        (linear_file(url='"{secret:K}/graphql"', teamId='"x"'), "linear.teamId", "unknown key"),
        (linear_file(url='"file:///etc/passwd"'), "linear.url", "http://"),
        (
            linear_file(
                '[actions.a]\nauth = { type = "bearer", token = "{secret:T}" }\n'
                "[actions.a.linear]\n"
            ),
            "linear.api_key",
            "not both",
        ),
    ],
)
def test_a_bad_linear_block_is_one_line_naming_file_action_and_field(
    runbooks: Runbooks, text: str, field: str, problem: str
) -> None:
    path = runbooks.write(text)
    with pytest.raises(ConfigError) as info:
        load_runbook_subject(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path.resolve()}: action 'a'")
    assert f"field '{field}'" in message and problem in message


def test_bearer_auth_replaces_the_api_key(runbooks: Runbooks) -> None:
    subject = runbooks.load(
        linear_file(
            '[actions.a]\nauth = { type = "bearer", token = "{secret:T}" }\n[actions.a.linear]\n',
            api_key=None,
        )
    )
    preview = subject.preview("a", {})
    assert preview is not None
    assert preview.splitlines()[:2] == [
        "POST https://api.linear.app/graphql",
        "Accept: application/json",
    ]
    assert "Authorization: Bearer {secret:T}" in preview
