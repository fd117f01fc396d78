"""Parameter validation and retry timing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from operator_core.actions.registry import (
    ActionDefinition,
    ActionRegistry,
    ParamDef,
    validate_action_params,
)
from operator_core.actions.retry import RetryConfig
from operator_core.errors import ConfigError, UnknownActionError, ValidationError
from operator_core.subjects.demo import DemoSubject

DEF = ActionDefinition(
    name="deploy",
    parameters={
        "service": ParamDef(type="string", pattern=r"[a-z][a-z0-9-]*"),
        "replicas": ParamDef(type="integer", required=False, default=2),
        "ratio": ParamDef(type="number", required=False),
        "force": ParamDef(type="boolean", required=False, default=False),
        "env": ParamDef(type="enum", choices=("prod", "staging")),
    },
)


def test_params_are_typed_and_defaulted() -> None:
    out = validate_action_params(
        DEF, {"service": "api", "ratio": "0.5", "env": "prod", "force": "yes"}
    )
    assert out == {"service": "api", "replicas": 2, "ratio": 0.5, "force": True, "env": "prod"}


@pytest.mark.parametrize(
    ("params", "name", "match"),
    [
        ({"env": "prod"}, "service", "missing required parameter 'service'"),
        ({"service": "API!", "env": "prod"}, "service", "does not match pattern"),
        ({"service": "api", "env": "dev"}, "env", "must be one of prod, staging"),
        ({"service": "api", "env": "prod", "replicas": "two"}, "replicas", "must be an integer"),
        ({"service": "api", "env": "prod", "replicas": True}, "replicas", "must be an integer"),
        ({"service": "api", "env": "prod", "force": "maybe"}, "force", "must be a boolean"),
        ({"service": "api", "env": "prod", "extra": 1}, "extra", "unknown parameter 'extra'"),
    ],
)
def test_validation_error_names_the_parameter(params: dict, name: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        validate_action_params(DEF, params)
    assert info.value.parameter == name


def test_registry_from_subject_and_unknown_action() -> None:
    reg = ActionRegistry.from_subject(DemoSubject())
    assert reg.list_action_names() == [
        "check_health",
        "drain_store",
        "restart_store",
        "transfer_leader",
    ]
    td = reg.require("transfer_leader")
    assert set(td.parameters) == {"region_id", "to_store_id"}
    assert td.parameters["region_id"].type == "int"
    with pytest.raises(UnknownActionError, match="available: check_health"):
        reg.require("reboot_everything")


class CountingSubject(DemoSubject):
    def __init__(self, duplicate: bool = False) -> None:
        super().__init__()
        self.reads = 0
        self.duplicate = duplicate

    def action_definitions(self) -> list[ActionDefinition]:
        self.reads += 1
        defs = super().action_definitions()
        return defs + defs[:1] if self.duplicate else defs


def test_a_lazy_registry_reads_the_subject_at_first_use_once() -> None:
    subject = CountingSubject()
    reg = ActionRegistry.from_subject(subject, lazy=True)
    assert subject.reads == 0 and reg.subject is subject
    assert "drain_store" in reg
    assert reg.require("drain_store").name == "drain_store"
    reg.load()
    assert subject.reads == 1
    eager = CountingSubject()
    ActionRegistry.from_subject(eager)
    assert eager.reads == 1


def test_a_lazy_registry_raises_a_bad_definition_at_load() -> None:
    reg = ActionRegistry.from_subject(CountingSubject(duplicate=True), lazy=True)
    with pytest.raises(ConfigError, match="defined twice"):
        reg.load()
    with pytest.raises(ConfigError, match="defined twice"):
        ActionRegistry.from_subject(CountingSubject(duplicate=True))


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    cfg = RetryConfig(min_wait_seconds=1.0, max_wait_seconds=10.0, jitter_fraction=0.5)
    for attempt, base in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)]:
        delays = [cfg.delay_seconds(attempt) for _ in range(200)]
        assert min(delays) >= base
        assert max(delays) <= base * 1.5
        assert max(delays) - min(delays) > 0  # jitter actually spreads retries


def test_calculate_next_retry_is_aware_utc() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    at = RetryConfig(min_wait_seconds=2.0, jitter_fraction=0.0).calculate_next_retry(0, now)
    assert at.tzinfo is not None and (at - now).total_seconds() == 2.0
