"""A proposal whose times, delays or values could not be kept is refused, with one
ValidationError naming the field, through every way in (issue 20, item 2): nothing is
stored, so no runner can meet it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.limits import MAX_AHEAD_DAYS, MAX_RETRIES
from operator_core.errors import ValidationError
from operator_core.model.types import ActionRecommendation

from tests.support.odd_subject import OddSubject

TEN_YEARS = MAX_AHEAD_DAYS * 86400
FAR = datetime.now(UTC) + timedelta(days=MAX_AHEAD_DAYS + 2)

# (keyword arguments of one proposal, the field its error names)
BAD_PROPOSALS: list[tuple[dict[str, Any], str]] = [
    ({"schedule_in": 99999999999 * 86400}, "schedule"),
    ({"schedule_in": 10**400}, "schedule"),  # no float can hold it
    ({"schedule_in": TEN_YEARS + 1}, "schedule"),
    ({"schedule_in": float("inf")}, "schedule"),
    ({"schedule_in": -1}, "schedule"),
    ({"expires_in": 3000000 * 86400}, "expiry"),
    ({"expires_in": float("-inf")}, "expiry"),
    ({"scheduled_at": FAR}, "schedule"),
    ({"scheduled_at": datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))}, "schedule"),
    ({"expires_at": datetime.max}, "expiry"),
    ({"max_retries": MAX_RETRIES + 1}, "max_retries"),
    ({"max_retries": 10**30}, "max_retries"),
    ({"ticket_id": 2**70}, "ticket"),
    ({"reason": "bad \udcff bytes"}, "reason"),
    ({"reason": "x" * 100_001}, "reason"),
    ({"proposed_by": "\ud800"}, "proposed_by"),
    ({"parameters": {"text": "\udfff"}}, "text"),
    ({"parameters": {"n": 2**64}}, "n"),
    ({"parameters": {"x": float("nan")}}, "x"),
    ({"parameters": {"x": float("inf")}}, "x"),
    ({"parameters": {1: "a", "text": "b"}}, "parameters"),
]


def _args(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"action_name": "echo", "parameters": {}, "reason": "r", **kwargs}


async def _nothing_stored(ex: ActionExecutor) -> None:
    assert await ex.db.list_proposals() == []
    assert await ex.db.list_workflows() == []
    events = [e.event_type for e in await ex.db.list_audit_events()]
    assert events in ([], ["policy_seeded"]), events  # opening seeds the policy


@pytest.fixture
async def ex(make_executor: Callable[..., Awaitable[ActionExecutor]]) -> ActionExecutor:
    return await make_executor(subject=OddSubject())


@pytest.mark.parametrize(("kwargs", "field"), BAD_PROPOSALS)
async def test_propose_action_refuses_what_cannot_be_kept(
    ex: ActionExecutor, kwargs: dict[str, Any], field: str
) -> None:
    args = _args(kwargs)
    with pytest.raises(ValidationError) as info:
        await ex.propose_action(
            args.pop("action_name"), args.pop("parameters"), args.pop("reason"), **args
        )
    assert info.value.parameter == field, info.value
    await _nothing_stored(ex)


@pytest.mark.parametrize(("kwargs", "field"), BAD_PROPOSALS)
async def test_propose_actions_refuses_the_batch_naming_the_proposal(
    ex: ActionExecutor, kwargs: dict[str, Any], field: str
) -> None:
    kwargs = dict(kwargs)
    by = kwargs.pop("proposed_by", "agent")  # one for the whole batch
    with pytest.raises(ValidationError, match="^proposal [12]: ") as info:
        await ex.propose_actions([_args({}), _args(kwargs)], proposed_by=by)
    assert info.value.parameter == field
    await _nothing_stored(ex)


BAD_STEPS: list[tuple[dict[str, Any], str]] = [
    ({"delay_seconds": 99999999999 * 86400.0}, "delay_seconds"),
    ({"delay_seconds": float("nan")}, "delay_seconds"),
    ({"delay_seconds": float("inf")}, "delay_seconds"),
    ({"delay_seconds": -5}, "delay_seconds"),
    ({"delay_seconds": TEN_YEARS + 1}, "delay_seconds"),
    ({"max_retries": 10**30}, "max_retries"),
    ({"reason": "\udcff"}, "reason"),
    ({"parameters": {"n": -(2**63) - 1}}, "n"),
]


@pytest.mark.parametrize(("step", "field"), BAD_STEPS)
@pytest.mark.parametrize("as_model", [False, True])
async def test_propose_workflow_refuses_a_step_that_cannot_be_kept(
    ex: ActionExecutor, step: dict[str, Any], field: str, as_model: bool
) -> None:
    bad: dict[str, Any] | ActionRecommendation = {"action_name": "echo", **step}
    if as_model:  # built without validation, as a caller may
        bad = ActionRecommendation.model_construct(
            **{"parameters": {}, "reason": "", "delay_seconds": 0.0, "max_retries": None, **bad}
        )
    with pytest.raises(ValidationError, match="^step 2: ") as info:
        await ex.propose_workflow("wf", "d", [{"action_name": "ok"}, bad])
    assert info.value.parameter == field
    await _nothing_stored(ex)


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("wf", "d", [{"action_name": "ok", "delay_seconds": "soon"}]), {}, "delay_seconds"),
        (("wf", "d", [["ok"]]), {}, "step"),
        (("wf", "d", "ok"), {}, "step"),
        (("wf", "d", [{"action_name": "ok"}], 2**64), {}, "ticket"),
        (("\udcff", "d", [{"action_name": "ok"}]), {}, "name"),
        (("wf", None, [{"action_name": "ok"}]), {}, "description"),
        (("wf", "d", [{"action_name": "ok"}]), {"expires_in": 10**400}, "expiry"),
        (("wf", "d", [{"action_name": "ok"}]), {"proposed_by": 7}, "proposed_by"),
    ],
)
async def test_propose_workflow_refuses_bad_arguments_by_name(
    ex: ActionExecutor, args: tuple[Any, ...], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        await ex.propose_workflow(*args, **kwargs)
    assert info.value.parameter == field, info.value
    await _nothing_stored(ex)


async def test_the_bounds_themselves_are_accepted(ex: ActionExecutor) -> None:
    """Ten years ahead, a thousand retries, 64-bit numbers: kept as given."""
    p = await ex.propose_action(
        "echo",
        {"n": 2**63 - 1, "x": 1e308, "text": "é [/] \x00"},
        "r",
        schedule_in=TEN_YEARS,
        max_retries=MAX_RETRIES,
    )
    stored = await ex.db.get_proposal(p.id)
    assert stored is not None and stored.parameters["n"] == 2**63 - 1
    assert stored.max_retries == MAX_RETRIES
    wf = await ex.propose_workflow(
        "wf", "d", [{"action_name": "ok"}, {"action_name": "ok", "delay_seconds": TEN_YEARS}]
    )
    steps = await ex.db.list_workflow_actions(wf)
    assert steps[1].delay_seconds == TEN_YEARS
