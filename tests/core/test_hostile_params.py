"""Parameters no caller should be able to crash the engine with: nested thousands deep,
numbers past what Python will print, nan and inf, lone surrogates, names that are not
strings. Each is a ValidationError naming the parameter, and nothing is stored."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.errors import ValidationError

from tests.support.subjects import TestSubject


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        ("ok", {"seconds": _deep(10_000)}, "parameter 'seconds' must be a finite number"),
        ("ok", {"seconds": {"a": _deep(10_000)}}, "parameter 'seconds' must be a finite"),
        ("ok", {"seconds": 10**5000}, "parameter 'seconds' must be a finite number, got <int>"),
        ("ok", {"seconds": math.nan}, "parameter 'seconds' must be a finite number"),
        ("ok", {"seconds": "inf"}, "parameter 'seconds' must be a finite number"),
        ("ok", {"seconds": "-Infinity"}, "parameter 'seconds' must be a finite number"),
        ("flaky", {"times": "9" * 5000}, "parameter 'times' must be an integer"),
        ("ok", _deep(10_000), "parameters of 'ok' must be a mapping"),
        ("ok", {1: 2}, "parameter names of 'ok' must be strings"),
    ],
    ids=[
        "deep list",
        "deep dict",
        "huge int",
        "nan",
        "inf text",
        "-inf text",
        "long digits",
        "deep mapping",
        "int key",
    ],
)
async def test_hostile_parameters_are_one_clear_validation_error(
    tmp_path: Path, action: str, params: Any, message: str
) -> None:
    async with ActionExecutor(tmp_path / "o.db", ActionRegistry.from_subject(TestSubject())) as ex:
        with pytest.raises(ValidationError) as info:
            await ex.propose_action(action, params, "r")
        assert str(info.value).startswith(message), str(info.value)
        assert len(str(info.value)) < 300
        assert await ex.db.list_proposals(None, limit=10) == []


async def test_a_string_parameter_with_lone_surrogates_is_refused(tmp_path: Path) -> None:
    from operator_core.actions.registry import ActionDefinition, ParamDef, validate_action_params

    definition = ActionDefinition(name="note", parameters={"text": ParamDef(type="str")})
    with pytest.raises(ValidationError, match="not valid Unicode text"):
        validate_action_params(definition, {"text": b"bad\xff".decode("utf-8", "surrogateescape")})
    assert validate_action_params(definition, {"text": "fine ✓"}) == {"text": "fine ✓"}
