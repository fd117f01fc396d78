"""``jsontext`` (JSON through ``_json`` without the ``json`` package) reads and writes what
``json.loads`` and ``json.dumps`` do, for every option the CLI and the engine use: the
reading commands print through it, byte for byte as the Typer path's ``json``."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from operator_core import jsontext
from operator_core.model.states import ActionStatus

TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["é 中", "\x1b[31m", "\u202e", "\U0001f600", "\ud800", "", '"\\/'],
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
    | st.sampled_from([ActionStatus.FAILED, datetime(2026, 12, 3, 6, 14, 19, 5, UTC)])
)
KEYS = TEXT | st.integers(-5, 5) | st.sampled_from([ActionStatus.COMPLETED])
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(KEYS, inner, max_size=4)
    ),
    max_leaves=20,
)
OPTIONS = [
    {"indent": 2, "default": str, "sort_keys": True, "ensure_ascii": False},  # json_text
    {"default": str, "sort_keys": True, "ensure_ascii": False},  # json_line
    {"default": str},  # param_text
    {"sort_keys": True, "separators": (",", ":"), "default": str},  # the stored form
    {"indent": 4},
    {},
]


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, object]:
    try:
        return "value", fn(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("options", OPTIONS, ids=str)
@given(value=VALUES)
def test_dumps_writes_what_json_dumps_writes(options: dict[str, Any], value: Any) -> None:
    assert _outcome(jsontext.dumps, value, **options) == _outcome(json.dumps, value, **options)


@given(value=VALUES, indent=st.sampled_from([None, 2]), ascii_only=st.booleans())
def test_loads_reads_back_what_json_reads(value: Any, indent: int | None, ascii_only: bool) -> None:
    text = json.dumps(value, default=str, indent=indent, ensure_ascii=ascii_only)
    for padded in (text, f" \n{text}\t\r "):
        ours, theirs = jsontext.loads(padded), json.loads(padded)
        assert repr(ours) == repr(theirs)  # repr: NaN is not equal to itself


@pytest.mark.parametrize(
    "text", ["", " ", "{", "[1,]", "1 2", '{"a": 1} x', "\ufeff1", "nul", "NaN", "-Infinity"]
)
def test_loads_refuses_or_accepts_as_json_does(text: str) -> None:
    ours, theirs = _outcome(jsontext.loads, text), _outcome(json.loads, text)
    if ours[0] == "value" and isinstance(ours[1], float) and math.isnan(ours[1]):
        assert isinstance(theirs[1], float) and math.isnan(theirs[1])
    else:
        assert ours == theirs


def test_a_value_json_cannot_write_is_refused_alike() -> None:
    for options in OPTIONS:
        if "default" not in options:
            assert _outcome(jsontext.dumps, {"x": object()}, **options)[0] == "TypeError"
            assert _outcome(json.dumps, {"x": object()}, **options)[0] == "TypeError"
        assert _outcome(jsontext.dumps, {(1, 2): 1}, **options) == _outcome(
            json.dumps, {(1, 2): 1}, **options
        )
