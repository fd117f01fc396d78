"""Every built-in template validates against the subject it is written for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from operator_core.actions.registry import ActionRegistry
from operator_core.automations.definition import load_definition, parse_definition
from operator_core.automations.templates import CATEGORIES, TEMPLATES, Template, get_template
from operator_core.automations.validate import first_problem
from operator_core.errors import ConfigError
from operator_core.subjects.demo import DemoSubject
from operator_core.subjects.loader import load_subject

RUNBOOK = Path(__file__).resolve().parents[2] / "examples" / "runbook.toml"


def registry(subject: str) -> ActionRegistry:
    if subject == "demo":
        return ActionRegistry.from_subject(DemoSubject(seed=1))
    return ActionRegistry.from_subject(load_subject(f"commands:{RUNBOOK}"))


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.name for t in TEMPLATES])
def test_template_validates_against_its_subject(template: Template) -> None:
    t = get_template(template.name)
    d = parse_definition(t.definition(), t.name)
    assert first_problem(d, registry(t.subject), t.name) is None
    assert d.name == t.name


def test_every_seed_category_has_a_template() -> None:
    assert {t.category for t in TEMPLATES} == set(CATEGORIES)
    assert any(t.subject == "demo" for t in TEMPLATES)


def test_written_template_loads_under_its_new_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(get_template("restart-if-still-open").text("mine"))
    d = load_definition(path)
    assert d.name == "mine"
    assert "position" in json.loads(path.read_text())["nodes"][0]  # seed shape, for editors
    assert first_problem(d, registry("demo"), str(path)) is None


def test_copies_do_not_share_state() -> None:
    t = get_template("drain-on-escalation")
    t.definition()["nodes"].clear()
    assert t.definition()["nodes"]


def test_unknown_template_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="no template named 'nope' \\(templates: restart-if"):
        get_template("nope")
