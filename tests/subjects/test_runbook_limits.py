"""Numbers and nesting a runbook cannot be trusted with: nan, inf, zero, negatives and
absurd sizes are refused at load, naming the file, the action and the field, as is a
webhook body nested deeper than MAX_JSON_DEPTH (it once crashed loading with
RecursionError)."""

from __future__ import annotations

import math

import pytest
from operator_core.actions.registry import ActionDefinition, ActionRegistry
from operator_core.errors import ConfigError
from operator_core.subjects.base import BaseSubject
from operator_core.subjects.templates import MAX_JSON_DEPTH

from .conftest import Runbooks

COMMAND = """
[actions.step]
argv = ["true"]
{extra}
"""
HOOK = """
[actions.hook]
url = "https://example.invalid/"
{extra}
"""


@pytest.mark.parametrize(
    ("template", "extra", "field"),
    [
        (COMMAND, "timeout = nan", "timeout"),
        (COMMAND, "timeout = inf", "timeout"),
        (COMMAND, "timeout = -inf", "timeout"),
        (COMMAND, "timeout = 0", "timeout"),
        (COMMAND, "timeout = -5", "timeout"),
        (COMMAND, "timeout = 1e300", "timeout"),
        (HOOK, "timeout = nan", "timeout"),
        (HOOK, "timeout = inf", "timeout"),
        (COMMAND, "kill_grace = nan", "kill_grace"),
        (COMMAND, "kill_grace = inf", "kill_grace"),
        (COMMAND, "kill_grace = -1", "kill_grace"),
        (COMMAND, "retry = { backoff_min = nan }", "retry.backoff_min"),
        (COMMAND, "retry = { backoff_max = inf }", "retry.backoff_max"),
        (COMMAND, "retry = { backoff_min = -1 }", "retry.backoff_min"),
        (COMMAND, "retry = { max_retries = 9223372036854775807 }", "retry.max_retries"),
        (HOOK, "expect_status = [nan]", "expect_status"),
        (HOOK, "expect_status = [0]", "expect_status"),
    ],
)
def test_non_finite_or_out_of_range_numbers_are_refused(
    runbooks: Runbooks, template: str, extra: str, field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        runbooks.load(template.format(extra=extra))
    message = str(info.value)
    assert "action '" in message and f"field '{field}'" in message, message
    assert "\n" not in message


def test_defaults_table_numbers_are_checked_too(runbooks: Runbooks) -> None:
    with pytest.raises(ConfigError, match="field 'timeout'"):
        runbooks.load("[defaults]\ntimeout = inf\n" + COMMAND.format(extra=""))


def test_finite_positive_numbers_still_load(runbooks: Runbooks) -> None:
    subject = runbooks.load(
        COMMAND.format(extra="timeout = 0.5\nkill_grace = 0\nretry = { backoff_min = 0.5 }")
    )
    definition = ActionRegistry.from_subject(subject).require("step")
    assert definition.timeout_seconds == 0.5 + 0 + 1.0
    assert definition.retry_min_wait_seconds == 0.5


def _body(depth: int) -> str:
    """A body nested ``depth`` tables deep, written as one dotted table header (tomllib reads
    that without recursing, so the depth reaches Operator's own walk of the body)."""
    return HOOK.format(extra="[actions.hook.body" + ".a" * depth + "]\nleaf = 1")


def test_webhook_body_nested_thousands_deep_is_refused_naming_the_action(
    runbooks: Runbooks,
) -> None:
    with pytest.raises(ConfigError) as info:
        runbooks.load(_body(5000))
    message = str(info.value)
    assert "action 'hook'" in message and "field 'body'" in message
    assert f"nested more than {MAX_JSON_DEPTH} levels" in message


def test_webhook_body_depth_limit_is_exact(runbooks: Runbooks) -> None:
    # body itself is level 1; the dotted keys add one level each, the leaf table one more.
    runbooks.load(_body(MAX_JSON_DEPTH - 1))
    with pytest.raises(ConfigError, match="nested more than"):
        runbooks.load(_body(MAX_JSON_DEPTH))


def test_array_nested_too_deep_for_toml_itself_is_one_clear_error(runbooks: Runbooks) -> None:
    deep = "[" * 3000 + "1" + "]" * 3000
    with pytest.raises(ConfigError, match="nested too deeply"):
        runbooks.load(HOOK.format(extra=f"body = {{ a = {deep} }}"))


class _BadTimeouts(BaseSubject):
    name = "bad-timeouts"

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def action_definitions(self) -> list[ActionDefinition]:
        return [ActionDefinition(name="x", timeout_seconds=self.timeout)]


@pytest.mark.parametrize("timeout", [math.nan, math.inf, 0.0, -1.0, 1e300])
def test_a_plugin_subject_declaring_a_non_finite_timeout_is_refused(timeout: float) -> None:
    with pytest.raises(ConfigError, match="bad-timeouts.*timeout_seconds"):
        ActionRegistry.from_subject(_BadTimeouts(timeout))
