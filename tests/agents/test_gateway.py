"""The gateway on the real engine in-process: the catalog an agent reads from a real
runbook, and every way a wait for a decision ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from operator_core.agents.gateway import AgentGateway, agent_identity
from operator_core.identity import Identity, current_identity
from operator_core.subjects.loader import load_subject

from tests.e2e.conftest import REPO

RUNBOOK = f"commands:{REPO / 'examples' / 'runbook.toml'}"


def human() -> Identity:
    me = current_identity()
    return Identity(me.uid, "alice", me.host)


async def gateway(make_executor: Callable[..., Any], **kwargs: Any) -> AgentGateway:
    ex = await make_executor(approval_mode=True, identity=agent_identity("bot"), **kwargs)
    return AgentGateway(ex, "bot")


async def test_catalog_from_a_runbook_shows_types_choices_and_the_command(
    make_executor: Callable[..., Any],
) -> None:
    gw = await gateway(make_executor, subject=load_subject(RUNBOOK))
    actions = {a["name"]: a for a in (await gw.list_actions())["actions"]}
    restart = actions["restart_service"]
    assert restart["runs"].startswith("sudo -n systemctl restart <unit>")
    assert restart["risk"] == "high" and restart["approval_required"] is True
    unit = restart["parameters_schema"]["properties"]["unit"]
    assert unit["type"] == "string" and "nginx.service" in unit["enum"]
    assert restart["parameters_schema"]["required"] == ["unit"]
    lines = actions["tail_log"]["parameters_schema"]["properties"]["lines"]
    assert lines == {"type": "integer", "default": 50}
    assert "/var/log/<file>" in actions["tail_log"]["runs"]

    proposed = await gw.propose_action("restart_service", {"unit": "nginx.service"}, "5xx rate 40%")
    assert proposed["will_run"].startswith("sudo -n systemctl restart nginx.service")


async def test_wait_ends_rejected_with_the_reason(make_executor: Callable[..., Any]) -> None:
    gw = await gateway(make_executor)
    person = await make_executor(approval_mode=True, identity=human())
    pid = (await gw.propose_action("ok", {}, "r"))["proposal"]["id"]
    notes: list[str] = []

    async def progress(done: float, total: float, message: str) -> None:
        notes.append(message)

    waiting = asyncio.create_task(gw.wait_for_decision(pid, 20, progress))
    await asyncio.sleep(1.3)
    await person.reject_proposal(pid, "alice", "not during the freeze")
    answer = await asyncio.wait_for(waiting, 5)
    assert answer["decision"] == "rejected"
    assert answer["reason"] == "not during the freeze"
    assert notes and "awaiting approval" in notes[0]


async def test_wait_ends_expired_cancelled_or_approved(
    make_executor: Callable[..., Any],
) -> None:
    gw = await gateway(make_executor)
    person = await make_executor(approval_mode=True, identity=human())
    quick = (await gw.propose_action("ok", {}, "r", expires_in_seconds=0.3))["proposal"]["id"]
    answer = await gw.wait_for_decision(quick, 5)
    assert answer["decision"] == "expired"
    assert answer["waited_seconds"] < 2

    other = (await gw.propose_action("ok", {}, "r"))["proposal"]["id"]
    await person.cancel_proposal(other, "alice", "superseded")
    answer = await gw.wait_for_decision(other, 5)
    assert answer["decision"] == "cancelled"

    approved = (await gw.propose_action("ok", {}, "r"))["proposal"]["id"]
    await person.approve_proposal(approved, "alice")
    answer = await gw.wait_for_decision(approved, 10_000)
    assert answer["decision"] == "approved" and answer["by"] == "alice"


async def test_four_eyes_counts_the_agent_as_proposer(
    make_executor: Callable[..., Any], tmp_path: Path
) -> None:
    gw = await gateway(make_executor, four_eyes=True)
    pid = (await gw.propose_action("ok", {}, "r"))["proposal"]["id"]
    mine = (await gw.my_proposals())["proposals"]
    assert [p["id"] for p in mine] == [pid]
    person = await make_executor(approval_mode=True, four_eyes=True)
    approved = await person.approve_proposal(pid, "me")
    assert approved.approved_at is not None


async def test_wait_is_capped_whatever_the_agent_asks(
    make_executor: Callable[..., Any], monkeypatch: Any
) -> None:
    from operator_core.agents import gateway as module

    monkeypatch.setattr(module, "MAX_WAIT_SECONDS", 0.5)
    gw = await gateway(make_executor)
    pid = (await gw.propose_action("ok", {}, "r"))["proposal"]["id"]
    answer = await asyncio.wait_for(gw.wait_for_decision(pid, 10_000), 5)
    assert answer["decision"] == "pending"
    assert 0.5 <= answer["waited_seconds"] < 2


async def test_wait_on_a_workflow_step_ends_when_the_workflow_is_approved(
    make_executor: Callable[..., Any],
) -> None:
    gw = await gateway(make_executor)
    person = await make_executor(approval_mode=True, identity=human())
    wf = await gw.propose_workflow(
        "evacuate", "drain then check", [{"action": "ok"}, {"action": "ok", "delay_seconds": 1}]
    )
    step = wf["steps"][1]["id"]
    assert (await gw.wait_for_decision(step, 0.2))["decision"] == "pending"
    await person.approve_workflow(wf["workflow_id"], "alice")
    assert (await gw.wait_for_decision(step, 5))["decision"] == "approved"


async def test_text_that_is_not_unicode_is_refused_with_a_clear_error(
    make_executor: Callable[..., Any],
) -> None:
    from operator_core.errors import ValidationError

    gw = await gateway(make_executor)
    for call, message in (
        (gw.propose_action("ok", {}, "bad \ud800 reason"), "the reason is not valid text"),
        (gw.propose_action("ok\ud800", {}, "r"), "unknown action"),
        (gw.open_ticket("title \udcff"), "the title is not valid text"),
    ):
        try:
            await call
        except ValidationError as exc:
            assert message in str(exc)
        else:
            raise AssertionError("accepted text with a lone surrogate")
    assert (await gw.my_proposals())["proposals"] == []


async def test_an_agent_sees_whether_the_approval_still_matches_what_runs(
    make_executor: Callable[..., Any], tmp_path: Path
) -> None:
    from operator_core.subjects.runbook import RunbookSubject

    runbook = tmp_path / "ops.toml"
    runbook.write_text('[actions.mark]\nargv = ["true", "before"]\n')
    gw = await gateway(make_executor, subject=RunbookSubject(runbook))
    person = await make_executor(
        approval_mode=True, identity=human(), subject=RunbookSubject(runbook)
    )
    pid = (await gw.propose_action("mark", {}, "r"))["proposal"]["id"]
    assert (await gw.get_proposal(pid))["approval"]["fingerprint_sha256"] is None
    await person.approve_proposal(pid, "alice")
    approval = (await gw.get_proposal(pid))["approval"]
    assert approval["still_matches"] is True and len(approval["fingerprint_sha256"]) == 64

    runbook.write_text('[actions.mark]\nargv = ["true", "after"]\n')
    later = await gateway(make_executor, subject=RunbookSubject(runbook))  # reads the edit
    for answer in (await later.get_proposal(pid), await later.get_result(pid)):
        assert answer["approval"]["still_matches"] is False
        assert answer["approval"]["fingerprint_sha256"] == approval["fingerprint_sha256"]


async def test_an_idle_wait_sleeps_until_another_process_commits(
    make_executor: Callable[..., Any],
) -> None:
    gw = await gateway(make_executor)
    await idle_wait_then_wake(gw, await make_executor(approval_mode=True, identity=human()))


async def idle_wait_then_wake(gw: AgentGateway, person: Any) -> None:
    """The wait sleeps on the database's listener, not a 0.1 s poll: idle, it re-reads a
    few times a second at most, and with the poll fallback made a minute long, a person's
    approval on another connection still ends the wait (the wake-up, not the poll).
    tests/agents/test_mcp_postgres.py runs it on PostgreSQL."""
    pid = (await gw.propose_action("ok", {}, "r"))["proposal"]["id"]
    db = gw.ex.db
    reads = 0
    data_version = db.data_version

    async def counted() -> int:
        nonlocal reads
        reads += 1
        return await data_version()

    db.data_version = counted  # type: ignore[method-assign]
    assert (await gw.wait_for_decision(pid, 1.5))["decision"] == "pending"
    assert reads <= 6, f"{reads} reads in an idle 1.5 s wait"

    db.poll_seconds = lambda: 60.0  # type: ignore[method-assign]
    waiting = asyncio.create_task(gw.wait_for_decision(pid, 40))
    await asyncio.sleep(0.3)
    await person.approve_proposal(pid, "alice")
    answer = await asyncio.wait_for(waiting, 20)
    assert answer["decision"] == "approved"
