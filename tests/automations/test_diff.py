"""Unchanged definitions hash alike however laid out; changes show as a readable diff."""

from __future__ import annotations

import json

from operator_core.automations.definition import load_definition, parse_definition
from operator_core.automations.diff import canonical_json, definition_hash, diff

from tests.automations.helpers import FIXTURES, seed_dict


def test_layout_positions_id_and_version_do_not_change_the_hash() -> None:
    original = parse_definition(seed_dict())
    moved = seed_dict()
    for node in moved["nodes"]:
        node["position"] = {"x": 0, "y": 0}
    moved["id"] = "other"
    moved["version"] = 9
    moved["nodes"][1]["data"] = dict(reversed(list(moved["nodes"][1]["data"].items())))
    assert definition_hash(parse_definition(moved)) == definition_hash(original)


def test_json_and_toml_files_hash_alike() -> None:
    a = load_definition(FIXTURES / "seed_004.json")
    b = load_definition(FIXTURES / "seed_004.toml")
    assert definition_hash(a) == definition_hash(b)


def test_seed_aliases_and_operator_names_hash_alike() -> None:
    seed = seed_dict()
    renamed = seed_dict()
    data = renamed["nodes"][4]["data"]
    data["action"] = data.pop("actionType")
    data["parameters"] = data.pop("config")
    assert definition_hash(parse_definition(seed)) == definition_hash(parse_definition(renamed))


def test_a_stored_dict_and_the_model_compare_alike() -> None:
    d = parse_definition(seed_dict())
    stored = json.loads(json.dumps(d.to_json_dict()))
    assert definition_hash(stored) == definition_hash(d)
    assert diff(stored, d) == ""


def test_diff_shows_the_changed_lines_only() -> None:
    old = parse_definition(seed_dict())
    changed = seed_dict()
    changed["nodes"][2]["data"]["durationMinutes"] = 10
    new = parse_definition(changed)
    assert definition_hash(new) != definition_hash(old)
    text = diff(old, new, "api-high-severity v1", "api-high-severity v2")
    lines = text.splitlines()
    assert lines[:2] == ["--- api-high-severity v1", "+++ api-high-severity v2"]
    assert [ln for ln in lines if ln.startswith(("-", "+")) and ln[1:2] == " "] == [
        '-        "durationMinutes": 5.0,',
        '+        "durationMinutes": 10.0,',
    ]
    assert diff(old, new) == diff(old, new)  # deterministic


def test_canonical_json_has_sorted_keys_and_no_positions() -> None:
    text = canonical_json(parse_definition(seed_dict()))
    assert "position" not in text
    keys = list(json.loads(text))
    assert keys == sorted(keys)


def test_diff_text_cannot_drive_the_terminal() -> None:
    old = seed_dict()
    new = seed_dict()
    new["description"] = "evil \u202e text"
    text = diff(parse_definition(old), parse_definition(new))
    assert "\u202e" not in text and "\\u202e" in text
