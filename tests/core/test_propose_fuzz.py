"""Fuzz the whole propose surface through a real runner (issue 20, item 2): times, delays,
sizes, text with surrogates, control characters and Rich markup, huge and non-finite numbers,
nested parameters, through propose_action, propose_actions and propose_workflow (dicts and
ActionRecommendations). Every proposal is refused with a ValidationError or stored; the
runner never stops nor falls into its database-trouble loop; and every stored action ends
completed, failed or cancelled, or is waiting for a reason it has (a time, a retry, the step
before it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import tempfile
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.errors import ValidationError
from operator_core.model.types import ActionRecommendation
from operator_core.runner import Runner

from tests.conftest import FAST_RETRY
from tests.support.odd_subject import ODD, OddSubject

HOSTILE = [
    "[/]",
    "[bold red]x[/bold red]",
    "\x1b]0;pwned\x07",
    "\x00",
    "line\nwill run: rm",
    "\udcff",
    "é" * 3,
    "x" * 100_001,
]
texts = st.one_of(
    st.text(st.characters(exclude_categories=[]), min_size=1, max_size=20), st.sampled_from(HOSTILE)
)
numbers = st.one_of(
    st.integers(0, 5),
    st.floats(0, 2),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, 99999999999 * 86400, 3653 * 86400, 3653 * 86400 + 1, -1]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
zones = st.sampled_from([None, UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))])
times = st.one_of(st.datetimes(timezones=zones), texts)
# Mostly an action that exists with parameters of its types (hostile values within them),
# and now and then one wild field: most proposals are stored, and reach the runner.
names = st.sampled_from(["ok", "echo", "echo", "echo", "fail", "nope", *ODD])
echo_params = st.fixed_dictionaries(
    {},
    optional={
        "text": texts,
        "n": st.one_of(st.integers(), st.integers(-(2**70), 2**70)),
        "x": st.floats(allow_nan=True, allow_infinity=True),
        "flag": st.booleans(),
    },
)
wild = st.one_of(
    st.just({}),
    st.builds(
        lambda k, v: {k: v},
        st.sampled_from(["schedule_in", "expires_in", "max_retries", "ticket_id"]),
        numbers,
    ),
    st.builds(lambda k, v: {k: v}, st.sampled_from(["scheduled_at", "expires_at"]), times),
    st.builds(lambda v: {"parameters": v}, values),
    st.builds(lambda v: {"action_name": v}, texts),
)
proposal = st.builds(
    lambda name, params, reason, extra: {
        "action_name": name,
        "parameters": params if name == "echo" else {},
        "reason": reason,
        **extra,
    },
    names,
    echo_params,
    texts,
    wild,
)
step = st.builds(
    lambda name, params, extra: {
        "action_name": name,
        "parameters": params if name == "echo" else {},
        **extra,
    },
    names,
    echo_params,
    st.one_of(
        st.just({}),
        st.builds(
            lambda k, v: {k: v},
            st.sampled_from(["delay_seconds", "max_retries", "reason"]),
            st.one_of(numbers, texts),
        ),
    ),
)
steps = st.lists(
    st.one_of(
        step,
        step.map(
            lambda s: ActionRecommendation.model_construct(
                **{"parameters": {}, "reason": "", "delay_seconds": 0.0, "max_retries": None, **s}
            )
        ),
    ),
    min_size=1,
    max_size=4,
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("action"), proposal),
        st.tuples(st.just("batch"), st.lists(proposal, max_size=3)),
        st.tuples(
            st.just("workflow"),
            st.builds(
                lambda name, description, recs, extra: {
                    "name": name,
                    "description": description,
                    "action_recommendations": recs,
                    **extra,
                },
                texts,
                texts,
                steps,
                st.one_of(
                    st.just({}),
                    st.builds(
                        lambda k, v: {k: v}, st.sampled_from(["expires_in", "ticket_id"]), numbers
                    ),
                ),
            ),
        ),
    ),
    min_size=1,
    max_size=5,
)


class Troubles(logging.Handler):
    """The runner's database-trouble messages: none may appear here (it would mean the
    runner was looping on something instead of failing one action)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("runner could not") or "nor failed" in message:
            self.seen.append(message)


async def _propose(ex: ActionExecutor, kind: str, payload: Any) -> None:
    if kind == "action":
        args = dict(payload)
        await ex.propose_action(
            args.pop("action_name"), args.pop("parameters"), args.pop("reason"), **args
        )
    elif kind == "batch":
        await ex.propose_actions(payload)
    else:
        await ex.propose_workflow(**payload)


async def _check(ops: list[tuple[str, Any]], path: Path) -> None:
    ex = ActionExecutor(
        path,
        ActionRegistry.from_subject(OddSubject()),
        approval_mode=False,
        retry_config=FAST_RETRY,
    )
    async with ex:
        await ex.open_ticket("a ticket for ids that exist")
        for kind, payload in ops:
            # Refused, by name, is fine; anything else fails the test.
            with contextlib.suppress(ValidationError):
                await _propose(ex, kind, payload)
        runner = Runner(ex, concurrency=4, poll_interval=0.02, lease_seconds=30)
        await asyncio.wait_for(runner.run(until_idle=True), 30)

    conn = sqlite3.connect(path)
    try:
        stuck = conn.execute(
            "SELECT id, status, scheduled_at, next_retry_at FROM action_proposals p WHERE "
            "status NOT IN ('completed', 'failed', 'cancelled') AND NOT ("
            "  status = 'validated' AND (scheduled_at IS NOT NULL OR EXISTS ("
            "    SELECT 1 FROM action_proposals d WHERE d.id = p.depends_on_proposal_id"
            "    AND d.status <> 'completed')))"
        ).fetchall()
        unfinished = conn.execute(
            "SELECT proposal_id FROM action_records WHERE completed_at IS NULL"
        ).fetchall()
        no_reason = conn.execute(
            "SELECT id FROM action_proposals WHERE status = 'failed' AND next_retry_at IS NULL "
            "AND (last_error IS NULL OR finished_at IS NULL)"
        ).fetchall()
    finally:
        conn.close()
    assert stuck == [], stuck
    assert unfinished == [], unfinished
    assert no_reason == [], no_reason


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=operations)
def test_every_proposal_is_refused_or_stored_and_the_runner_never_stops(
    ops: list[tuple[str, Any]],
) -> None:
    troubles = Troubles()
    logger = logging.getLogger("operator.runner")
    logger.addHandler(troubles)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(_check(ops, Path(tmp) / "fuzz.db"))
    finally:
        logger.removeHandler(troubles)
    assert troubles.seen == []
