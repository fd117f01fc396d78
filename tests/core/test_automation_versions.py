"""Storing automation versions: n+1 only when the definition changed, numbered without gaps
however many writers apply at once, and the automation row following its current version."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.automations.definition import parse_definition
from operator_core.cli.automations import new_version
from operator_core.db.automations import AutomationNotFoundError
from operator_core.subjects.demo import DemoSubject

from tests.automations.helpers import seed_dict


def version_of(**changes: Any) -> Any:
    data = seed_dict()
    data.update(changes)
    return new_version(parse_definition(data), "", None)


async def test_same_definition_is_no_new_version(make_executor: Any) -> None:
    ex: ActionExecutor = await make_executor(subject=DemoSubject(seed=1))
    name = seed_dict()["name"]
    first = await ex.store_automation(name, version_of(), "ana")
    again = await ex.store_automation(name, version_of(), "bo")
    assert (first.created, first.changed, first.version) == (True, True, 1)
    assert (again.created, again.changed, again.version) == (False, False, 1)
    assert len(await ex.automation_history(name)) == 1


async def test_a_new_version_moves_scope_and_trigger(make_executor: Any) -> None:
    ex: ActionExecutor = await make_executor(subject=DemoSubject(seed=1))
    name = seed_dict()["name"]
    await ex.store_automation(name, version_of(), "ana")
    scoped = version_of(scope={"type": "team", "team": "storage"})
    stored = await ex.store_automation(name, scoped, "ana")
    assert stored.version == 2
    assert (stored.automation.scope_type, stored.automation.scope_team) == ("team", "storage")


async def test_settings_enabled_counts_only_at_creation(make_executor: Any) -> None:
    """After creation, enable and disable decide: a new version does not flip the switch."""
    ex: ActionExecutor = await make_executor(subject=DemoSubject(seed=1))
    name = seed_dict()["name"]
    first = await ex.store_automation(name, version_of(settings={"enabled": True}), "ana")
    assert first.automation.enabled is True
    assert await ex.set_automation_enabled(name, False, "ana")
    later = await ex.store_automation(
        name, version_of(settings={"enabled": True, "timeout": "1h"}), "ana"
    )
    assert later.version == 2 and later.automation.enabled is False


async def test_writers_at_once_number_versions_without_gaps(
    make_executor: Any, db_path: Path
) -> None:
    """Several processes' executors apply different definitions at the same moment: the
    write lock serialises them, so the versions are 1..n with none lost or repeated."""
    name = seed_dict()["name"]
    writers = [await make_executor(subject=DemoSubject(seed=1)) for _ in range(4)]
    timeouts = ["1h", "2h", "3h", "4h"]
    await asyncio.gather(
        *(
            ex.store_automation(name, version_of(settings={"timeout": t}), "ana")
            for ex, t in zip(writers, timeouts, strict=True)
        )
    )
    history = await writers[0].automation_history(name)
    assert [v.version for v in history] == [1, 2, 3, 4]
    assert sorted(v.definition["settings"]["timeout"] for v in history) == sorted(timeouts)
    current = await writers[0].require_automation(name)
    assert current.current_version == 4


async def test_unknown_names_and_versions_are_named(make_executor: Any) -> None:
    ex: ActionExecutor = await make_executor()
    with pytest.raises(AutomationNotFoundError, match="no automation named 'x'"):
        await ex.require_automation("x")
    name = seed_dict()["name"]
    await ex.store_automation(name, version_of(), "ana")
    with pytest.raises(AutomationNotFoundError, match="no version 2"):
        await ex.automation_version(name, 2)
    with pytest.raises(AutomationNotFoundError):
        await ex.set_automation_enabled("x", True, "ana")
