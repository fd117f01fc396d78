"""``operator automations`` as a script sees it: definitions in seed 004's shape applied as
versions, history, diff, rollback appending, enable and disable, templates; and every bad
definition and bad input as one line on stderr, a non-zero exit and nothing stored."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from operator_core.automations.templates import get_template

from tests.e2e.conftest import assert_one_line_error, dump, query, run_cli

CLI = Callable[..., Any]
TEMPLATE = "restart-if-still-open"  # actions of the demo subject


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return str(result.stdout)


def definition(**changes: Any) -> dict[str, Any]:
    data = get_template(TEMPLATE).definition("restart")
    data.update(changes)
    return data


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


def test_versions_through_the_cli(db: Path, tmp_path: Path) -> None:
    def cli(*args: str) -> str:
        return ok(run_cli(db, *args, subject="demo"))

    file = tmp_path / "restart.json"
    assert "wrote" in ok(
        run_cli(
            db,
            "automations",
            "new",
            "restart",
            "--from-template",
            TEMPLATE,
            "--output",
            str(file),
            subject=None,
        )
    )
    assert json.loads(file.read_text())["nodes"][0]["position"]  # React Flow positions kept
    assert "created automation restart version 1" in cli(
        "automations", "apply", str(file), "--note", "first cut"
    )
    assert "unchanged" in cli("automations", "apply", str(file))

    edited = json.loads(file.read_text())
    edited["nodes"][0]["position"] = {"x": 999, "y": 999}
    write(file, edited)
    assert "unchanged" in cli("automations", "apply", str(file))  # layout alone is no version
    edited["nodes"][2]["data"]["durationMinutes"] = 10
    write(file, edited)
    assert "restart: version 2" in cli("automations", "apply", str(file), "--note", "wait longer")

    diff = cli("automations", "diff", "restart", "1", "2")
    assert '-        "durationMinutes": 5.0,' in diff
    assert '+        "durationMinutes": 10.0,' in diff

    assert "restart: version 3" in cli("automations", "rollback", "restart", "--to", "1")
    assert "same" in cli("automations", "diff", "restart", "1", "3")
    history = json.loads(cli("automations", "history", "restart", "--json"))
    assert [(v["version"], v["note"], v["copied_from"]) for v in history] == [
        (1, "first cut", None),
        (2, "wait longer", None),
        (3, "rollback to version 1", 1),
    ]
    assert history[0]["hash"] == history[2]["hash"] != history[1]["hash"]
    assert "unchanged" in cli("automations", "rollback", "restart", "--to", "1")

    listed = json.loads(cli("automations", "list", "--json"))
    assert [(a["name"], a["version"], a["enabled"], a["trigger"]) for a in listed] == [
        ("restart", 3, False, "incident_created")
    ]
    assert "restart enabled" in cli("automations", "enable", "restart")
    assert "already" in cli("automations", "enable", "restart")
    shown = json.loads(cli("automations", "show", "restart", "--json"))
    assert shown["automation"]["enabled"] is True
    assert shown["current"]["definition"]["nodes"][2]["data"]["durationMinutes"] == 5.0
    text = cli("automations", "show", "restart")
    assert "if status = open" in text and "[true] restart" in text
    assert "restart disabled" in cli("automations", "disable", "restart")

    audit = [
        r["event_type"] for r in query(db, "SELECT event_type FROM action_audit_log ORDER BY id")
    ]
    assert audit == [
        "automation_created",
        "automation_changed",
        "automation_rolled_back",
        "automation_enabled",
        "automation_disabled",
    ]
    assert "audit log OK" in cli("audit", "verify")


@pytest.mark.sqlite_only("checks that no database file is made")
def test_templates_are_listed(db: Path) -> None:
    out = ok(run_cli(db, "automations", "templates", subject=None))
    assert TEMPLATE in out and "Communication" in out
    assert not db.exists()


@pytest.mark.sqlite_only("opens the file with sqlite3; on PostgreSQL: test_pg_schema")
def test_history_is_append_only_in_the_database(db: Path, tmp_path: Path) -> None:
    file = write(tmp_path / "a.json", definition())
    ok(run_cli(db, "automations", "apply", str(file), subject="demo"))
    conn = sqlite3.connect(db)
    try:
        for sql in (
            "UPDATE automation_versions SET note = 'x'",
            "DELETE FROM automation_versions",
            "INSERT INTO automation_versions (automation_id, version, definition, hash, "
            "changed_by, changed_identity, changed_at) VALUES (1, 3, '{}', 'h', 'a', 'a', 'n')",
        ):
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(sql)
    finally:
        conn.close()


# ---------------------------------------------------------------------- bad definitions


def _node(data: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in data["nodes"] if n["id"] == node_id)


def _unknown_action(d: dict[str, Any]) -> None:
    _node(d, "restart")["data"]["actionType"] = "restart_svc"


def _bad_parameter(d: dict[str, Any]) -> None:
    _node(d, "restart")["data"]["config"]["colour"] = "red"


def _cycle(d: dict[str, Any]) -> None:
    d["edges"].append({"id": "back", "source": "recheck", "target": "check"})


def _missing_node(d: dict[str, Any]) -> None:
    d["edges"].append({"id": "dangling", "source": "recheck", "target": "nowhere"})


def _one_branch(d: dict[str, Any]) -> None:
    d["edges"] = [e for e in d["edges"] if e.get("sourceHandle") != "false"]
    d["nodes"] = [n for n in d["nodes"] if n["id"] != "recheck"]


def _bad_trigger_field(d: dict[str, Any]) -> None:
    d["trigger"]["conditions"].append({"field": "colour", "value": "red"})


def _bad_trigger_type(d: dict[str, Any]) -> None:
    d["trigger"]["type"] = "incident_exploded"


def _no_description(d: dict[str, Any]) -> None:
    del d["description"]


def _bad_timeout(d: dict[str, Any]) -> None:
    d["settings"]["timeout"] = "soon"


BAD_DEFINITIONS = [
    ("unknown action", _unknown_action, 'node "restart"', "restart_svc"),
    ("bad parameter", _bad_parameter, 'node "restart"', "colour"),
    ("cycle", _cycle, "cycle", "check"),
    ("edge to a missing node", _missing_node, 'edge "dangling"', "nowhere"),
    ("condition with one branch", _one_branch, 'node "still-open"', "false"),
    ("trigger field", _bad_trigger_field, "trigger", "colour"),
    ("trigger type", _bad_trigger_type, "trigger", "type"),
    ("no description", _no_description, "description", ""),
    ("bad timeout", _bad_timeout, "settings", "soon"),
]


@pytest.mark.parametrize(
    ("mutate", "where", "what"),
    [pytest.param(m, w, x, id=name) for name, m, w, x in BAD_DEFINITIONS],
)
def test_bad_definition_is_one_line_naming_file_and_node_and_stores_nothing(
    db: Path, tmp_path: Path, cli_in_process: CLI, mutate: Any, where: str, what: str
) -> None:
    _applied(cli_in_process, tmp_path)
    data = copy.deepcopy(definition())
    mutate(data)
    file = write(tmp_path / "bad.json", data)
    before = dump(db)
    line = assert_one_line_error(cli_in_process("automations", "apply", str(file), subject="demo"))
    assert str(file) in line and where in line and what in line
    assert dump(db) == before


@pytest.mark.sqlite_only("checks that no database file is made")
def test_bad_definition_on_a_new_database_creates_nothing(
    db: Path, tmp_path: Path, cli_in_process: CLI
) -> None:
    data = definition()
    _unknown_action(data)
    file = write(tmp_path / "bad.json", data)
    assert_one_line_error(cli_in_process("automations", "apply", str(file), subject="demo"))
    assert not db.exists()


def _applied(cli: CLI, tmp_path: Path) -> None:
    file = write(tmp_path / "good.json", definition())
    ok(cli("automations", "apply", str(file), subject="demo"))


def _files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("operator.db"))


def _make_files(tmp_path: Path) -> None:
    (tmp_path / "notjson.json").write_text("{nodes: [")
    (tmp_path / "def.yaml").write_text("name: x")
    (tmp_path / "exists.json").write_text("{}")


BAD_INPUT = [
    ("missing file", ["automations", "apply", "{tmp}/absent.json"], "cannot read"),
    ("not json", ["automations", "apply", "{tmp}/notjson.json"], "not valid JSON"),
    ("wrong suffix", ["automations", "apply", "{tmp}/def.yaml"], ".json or .toml"),
    ("note too long", ["automations", "apply", "{tmp}/good.json", "--note", "x" * 1001], "note"),
    ("history unknown", ["automations", "history", "nope"], "no automation named 'nope'"),
    ("show unknown", ["automations", "show", "nope"], "no automation named 'nope'"),
    ("enable unknown", ["automations", "enable", "nope"], "no automation named 'nope'"),
    ("diff unknown version", ["automations", "diff", "restart", "1", "7"], "no version 7"),
    ("rollback unknown version", ["automations", "rollback", "restart", "--to", "4"], "version 4"),
    ("rollback unknown", ["automations", "rollback", "nope", "--to", "1"], "nope"),
    ("rollback without --to", ["automations", "rollback", "restart"], "--to"),
    ("diff not a number", ["automations", "diff", "restart", "1", "two"], "V2"),
    (
        "new over a file",
        ["automations", "new", "x", "--from-template", TEMPLATE, "-o", "{tmp}/exists.json"],
        "already exists",
    ),
    (
        "new unknown template",
        ["automations", "new", "x", "--from-template", "nope", "-o", "{tmp}/n.json"],
        "no template",
    ),
    (
        "new bad name",
        ["automations", "new", "a b", "--from-template", TEMPLATE, "-o", "{tmp}/n.json"],
        "name",
    ),
]


@pytest.mark.parametrize(
    ("args", "expected"), [pytest.param(a, e, id=name) for name, a, e in BAD_INPUT]
)
def test_bad_automations_input_is_one_line_and_changes_nothing(
    db: Path, tmp_path: Path, cli_in_process: CLI, args: list[str], expected: str
) -> None:
    _applied(cli_in_process, tmp_path)
    _make_files(tmp_path)
    files = _files(tmp_path)
    before = dump(db)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    line = assert_one_line_error(cli_in_process(*argv, subject="demo"))
    assert expected.lower() in line.lower()
    assert dump(db) == before
    assert _files(tmp_path) == files


def test_rollback_is_checked_against_the_subject_loaded_now(
    db: Path, tmp_path: Path, cli_in_process: CLI
) -> None:
    """A version stored when the subject had its actions is not brought back once they
    are gone: an automation can never run what an agent could not propose."""
    _applied(cli_in_process, tmp_path)
    data = definition()
    _node(data, "wait")["data"]["durationMinutes"] = 1
    file = write(tmp_path / "v2.json", data)
    ok(cli_in_process("automations", "apply", str(file), subject="demo"))
    before = dump(db)
    line = assert_one_line_error(cli_in_process("automations", "rollback", "restart", "--to", "1"))
    assert "restart version 1" in line and "unknown action" in line
    assert dump(db) == before


def test_a_definition_in_seed_004s_exact_shape_applies_from_json_and_toml(
    db: Path, cli_in_process: CLI
) -> None:
    """Seed 004's own example (React Flow positions and all) applies; the same definition
    written as TOML is the same automation, so it makes no new version."""
    fixtures = Path(__file__).parents[1] / "automations" / "fixtures"
    first = ok(
        cli_in_process("automations", "apply", str(fixtures / "seed_004.json"), subject="demo")
    )
    assert "version 1" in first
    again = ok(
        cli_in_process("automations", "apply", str(fixtures / "seed_004.toml"), subject="demo")
    )
    assert "unchanged" in again
