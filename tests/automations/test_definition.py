"""Definitions parse from seed 004's JSON shape and the same keys in TOML."""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_core.automations.definition import (
    ActionNode,
    DefinitionError,
    load_definition,
    parse_definition,
    parse_duration,
)

from tests.automations.helpers import FIXTURES, action, linear, seed_dict, write


def test_seed_json_parses_with_positions_dropped() -> None:
    d = load_definition(FIXTURES / "seed_004.json")
    assert d.name == "api-high-severity"
    assert [n.type for n in d.nodes] == [
        "trigger",
        "action",
        "delay",
        "condition",
        "action",
        "action",
    ]
    restart = d.node("restart")
    assert isinstance(restart, ActionNode)
    assert restart.data.action == "restart_store"  # the seed's actionType
    assert restart.data.parameters == {"store_id": "{ticket.metadata.store}"}  # its config
    assert restart.data.retry is not None and restart.data.retry.initial_delay_ms == 5000
    assert d.settings.timeout_seconds == 900
    assert "position" not in str(d.to_json_dict())


def test_toml_with_the_same_keys_is_the_same_definition() -> None:
    assert load_definition(FIXTURES / "seed_004.toml") == load_definition(
        FIXTURES / "seed_004.json"
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1min", 60), ("5min", 300), ("15min", 900), ("90s", 90), ("2h", 7200), ("1h30m", 5400)],
)
def test_timeouts_in_the_seeds_words_and_any_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    d = parse_definition(linear(settings={"timeout": text}))
    assert d.settings.timeout_seconds == seconds


@pytest.mark.parametrize("text", ["", "5", "five minutes", "0s", "-1min", "99999days"])
def test_bad_timeout_is_one_line(text: str) -> None:
    with pytest.raises(DefinitionError) as err:
        parse_definition(linear(settings={"timeout": text}), "auto.json")
    assert str(err.value).startswith("auto.json: settings")
    assert "\n" not in str(err.value)


def test_ticket_created_is_an_alias_of_incident_created() -> None:
    d = parse_definition(linear(trigger={"type": "ticket_created"}))
    assert d.trigger.event == "incident_created"


def test_scope_global_word_or_team_table() -> None:
    assert parse_definition(linear(scope="global")).scope.type == "global"
    team = parse_definition(linear(scope={"type": "team", "team": "payments"})).scope
    assert team.team == "payments"
    with pytest.raises(DefinitionError, match="team scope needs"):
        parse_definition(linear(scope={"type": "team"}))


def test_age_trigger_needs_its_threshold() -> None:
    with pytest.raises(DefinitionError, match="needs ageThresholdMinutes"):
        parse_definition(linear(trigger={"type": "age"}))
    d = parse_definition(linear(trigger={"type": "age", "ageThresholdMinutes": 30}))
    assert d.trigger.age_threshold_minutes == 30


def test_state_transition_from_and_to() -> None:
    d = parse_definition(
        linear(trigger={"type": "state_changed", "stateTransition": {"to": "acknowledged"}})
    )
    assert d.trigger.state_transition is not None
    assert d.trigger.state_transition.from_ is None
    assert d.trigger.state_transition.to == "acknowledged"


def test_error_inside_a_node_names_file_and_node(tmp_path: Path) -> None:
    data = linear(action("restart", "restart_store", retry={"attempts": 0}))
    path = write(tmp_path, data)
    with pytest.raises(DefinitionError) as err:
        load_definition(path)
    assert str(err.value) == (
        f'{path}: node "restart": data.retry.attempts: Input should be greater than or equal to 1'
    )


def test_unknown_key_in_node_data_is_refused() -> None:
    data = linear(action("restart", "restart_store", continueOnErorr=True))
    with pytest.raises(DefinitionError, match='node "restart": data.continueOnErorr'):
        parse_definition(data)


def test_unknown_node_type_is_one_line() -> None:
    data = linear({"id": "x", "type": "loop", "data": {}})
    with pytest.raises(DefinitionError, match='node "x"') as err:
        parse_definition(data)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("auto.json", "{", "not valid JSON"),
        ("auto.toml", "name = ", "not valid TOML"),
        ("auto.yaml", "name: x", "ends in .json or .toml"),
        ("auto.json", "[]", "a definition is a table/object"),
    ],
)
def test_unreadable_files_are_one_line(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DefinitionError, match=expected) as err:
        load_definition(path)
    assert str(err.value).startswith(f"{path}: ")


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="cannot read"):
        load_definition(tmp_path / "absent.json")


def test_seed_dict_round_trips_through_its_stored_form() -> None:
    d = parse_definition(seed_dict())
    assert parse_definition(d.to_json_dict()) == d


def test_parse_errors_are_visible_text() -> None:
    data = linear(action("evil\u202e\n", "ok", retry={"attempts": 0}))
    with pytest.raises(DefinitionError) as err:
        parse_definition(data, "auto.json")
    assert str(err.value).startswith('auto.json: node "evil\\u202e\\n": data.retry.attempts')


def test_a_huge_graph_is_refused() -> None:
    many = [action(f"a{i}", "ok") for i in range(600)]
    with pytest.raises(DefinitionError, match="nodes: Tuple should have at most 500 items"):
        parse_definition(linear(*many))


def test_an_age_threshold_beyond_ten_years_is_refused() -> None:
    with pytest.raises(DefinitionError, match="trigger.ageThresholdMinutes"):
        parse_definition(linear(trigger={"type": "age", "ageThresholdMinutes": 1e300}))
