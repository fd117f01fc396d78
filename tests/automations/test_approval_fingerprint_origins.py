"""An automation's proposal and a scheduled follow-up are bound by their approval like any
other: when what they would run changed before their turn, they do not run and wait for a
human again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from operator_core.actions.definitions import ActionDefinition
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.db import fingerprints

from tests.automations.helpers import action, linear
from tests.automations.runs import proposals, run_idle, store
from tests.support.subjects import TestSubject


class EditedSubject(TestSubject):
    """The same subject after someone changed ``guarded``'s time limit."""

    __test__ = False

    def action_definitions(self) -> list[ActionDefinition]:
        return [
            d.model_copy(update={"timeout_seconds": 5.0}) if d.name == "guarded" else d
            for d in super().action_definitions()
        ]


def executor(db: Path, subject: TestSubject) -> ActionExecutor:
    return ActionExecutor(db, ActionRegistry.from_subject(subject), approval_mode=True)


async def voided(ex: ActionExecutor, pid: int) -> str | None:
    return (await ex.db.read(fingerprints.binding, pid)).voided


async def test_an_automations_proposal_is_voided_by_a_changed_definition(tmp_path: Path) -> None:
    db = tmp_path / "operator.db"
    async with executor(db, TestSubject()) as ex:
        await store(ex, linear(action("restart", "guarded"), name="heal-api"))
        await ex.open_ticket("api down", severity="high")
        await run_idle(ex)  # the automation proposes; approval holds it
        (made,) = await ex.db.list_proposals(limit=5)
        assert made.id is not None and made.proposed_by == "automation:heal-api"
        await ex.approve_proposal(made.id, "alice")
    async with executor(db, EditedSubject()) as ex:
        await run_idle(ex)
        p = await ex.require_proposal(made.id)
        assert p.awaiting_approval and p.status.value == "validated"
        reason = await voided(ex, made.id)
        assert reason == "what runs changed since approval: definition timeout_seconds 60.0 -> 5.0"
        assert [r["status"] for r in proposals(db)] == ["validated"]
        await ex.approve_proposal(made.id, "bob")
        await run_idle(ex)
        assert (await ex.require_proposal(made.id)).status.value == "completed"


async def test_a_scheduled_follow_up_is_voided_at_its_time(tmp_path: Path) -> None:
    db = tmp_path / "operator.db"
    async with executor(db, TestSubject()) as ex:
        p = await ex.propose_action("guarded", {}, "follow up", schedule_in=0.3)
        assert p.id is not None
        await ex.approve_proposal(p.id, "alice")
    await asyncio.sleep(0.4)  # due now
    async with executor(db, EditedSubject()) as ex:
        await run_idle(ex)
        after = await ex.require_proposal(p.id)
        assert after.awaiting_approval and after.approved_at is None
        assert "timeout_seconds" in (await voided(ex, p.id) or "")
        assert [r.success for r in await ex.db.list_records(p.id)] == [False]
