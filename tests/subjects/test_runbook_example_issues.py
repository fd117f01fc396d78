"""The issue-tracker actions of the documented example runbook (examples/runbook.toml) work
as written, against the fake Jira, Linear and OAuth2 endpoints standing in for the real
hosts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_core.model.types import ActionStatus

from .conftest import Runbooks
from .fake_apis import FakeApis, serve
from .helpers import engine, run_until_settled

LINEAR_TABLE = "[actions.open_linear_issue.linear]\n"  # api.linear.app unless url is given
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "runbook.toml"


@pytest.fixture
def apis() -> Iterator[FakeApis]:
    with serve() as state:
        yield state


async def test_example_jira_linear_and_oauth2_actions_run_through_the_engine(
    runbooks: Runbooks, apis: FakeApis, tmp_path: Path, monkeypatch
) -> None:
    apis.client_id, apis.scope = "operator", "incidents:write"
    for name, value in {
        "JIRA_API_TOKEN": apis.jira_token,
        "LINEAR_API_KEY": apis.linear_key,
        "STATUS_CLIENT_SECRET": apis.client_secret,
    }.items():
        monkeypatch.setenv(f"OPERATOR_SECRET_{name}", value)
    text = (
        EXAMPLE.read_text()
        .replace("https://your-site.atlassian.net", apis.url)
        .replace(LINEAR_TABLE, f'{LINEAR_TABLE}url = "{apis.url}/graphql"\n')
        .replace("https://status.example.com", apis.url)
        .replace("https://auth.example.com", apis.url)
    )
    subject = runbooks.load(text)
    async with engine(tmp_path / "ops.db", subject) as ex:
        ticket = await ex.open_ticket("Checkout down", "502s", severity="high")
        jira = await ex.propose_action(
            "open_jira_issue", {"service": "checkout"}, reason="track", ticket_id=ticket.id
        )
        linear = await ex.propose_action(
            "open_linear_issue", {}, reason="track", ticket_id=ticket.id
        )
        status = await ex.propose_action("post_status", {}, reason="tell", ticket_id=ticket.id)
        results = {}
        for p in (jira, linear, status):
            assert p.id is not None
            if p.awaiting_approval:
                await ex.approve_proposal(p.id, "oncall@example.com")
            done = await run_until_settled(ex, p.id)
            assert done.status == ActionStatus.COMPLETED, done.last_error
            [record] = await ex.db.list_records(p.id)
            results[p.action_name] = record.result_data
    assert apis.problems == []
    assert results["open_jira_issue"]["issue_key"] == "OPS-1"
    assert results["open_linear_issue"]["identifier"] == "ENG-1"
    assert results["post_status"]["status"] == 201
    linear_body = json.loads(next(r.body for r in apis.requests if r.path == "/graphql"))
    assert linear_body["variables"]["input"]["priority"] == 2
