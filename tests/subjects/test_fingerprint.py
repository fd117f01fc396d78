"""The fingerprint of what runs, from real runbook files: what changes it, what does not,
and the one line that says what changed."""

from __future__ import annotations

from pathlib import Path

from operator_core.actions.fingerprint import Fingerprinter, explain
from operator_core.actions.registry import ActionRegistry
from operator_core.subjects.runbook import RunbookSubject


def fingerprint(tmp_path: Path, text: str, params: dict | None = None, name: str = "a"):
    path = tmp_path / "ops.toml"
    path.write_text(text)
    fp = Fingerprinter(ActionRegistry.from_subject(RunbookSubject(path))).of(name, params or {})
    assert fp is not None
    return fp


CMD = '[actions.a]\ndescription = "{d}"\nargv = {argv}\nenv = {{ T = "{{secret:T}}" }}\n'
HTTP = '[actions.a]\nurl = "{url}"\nmethod = "POST"\nbody = {{ token = "{{secret:T}}" }}\n'


def test_what_does_not_change_what_runs_keeps_the_fingerprint(tmp_path: Path) -> None:
    base = fingerprint(tmp_path, CMD.format(d="one", argv='["echo", "x"]'))
    # The description, and the literal's spelling in TOML, say nothing about what runs.
    same = fingerprint(tmp_path, CMD.format(d="two", argv="['echo', 'x']"))
    assert same.sha256 == base.sha256
    assert "{secret:T}" in (base.runs or "")  # a placeholder, never a value


def test_an_edit_of_what_runs_changes_it_and_says_where(tmp_path: Path) -> None:
    base = fingerprint(tmp_path, CMD.format(d="", argv='["echo", "x"]'))
    changed = fingerprint(tmp_path, CMD.format(d="", argv='["echo", "y"]'))
    added = fingerprint(tmp_path, CMD.format(d="", argv='["echo", "x", "-n"]'))
    assert explain(base.canonical, changed).endswith("argv[1] 'x' -> 'y'")
    assert explain(base.canonical, added).endswith("argv[2] added: '-n'")
    assert explain(added.canonical, base).endswith("argv[2] removed: '-n'")
    slower = fingerprint(tmp_path, CMD.format(d="", argv='["echo", "x"]') + "timeout = 5\n")
    assert slower.sha256 != base.sha256
    assert explain(base.canonical, None).endswith("the action is no longer offered")


def test_a_request_is_compared_line_by_line(tmp_path: Path) -> None:
    one = fingerprint(tmp_path, HTTP.format(url="https://a.example/x"))
    two = fingerprint(tmp_path, HTTP.format(url="https://b.example/x"))
    assert explain(one.canonical, two).endswith(
        "'POST https://a.example/x' -> 'POST https://b.example/x'"
    )


def test_parameters_are_part_of_it_and_each_render_is_kept(tmp_path: Path) -> None:
    text = '[actions.a]\nargv = ["echo", "{n}"]\nparams = { n = { type = "int" } }\n'
    path = tmp_path / "ops.toml"
    path.write_text(text)
    prints = Fingerprinter(ActionRegistry.from_subject(RunbookSubject(path)))
    one, again, two = prints.of("a", {"n": 1}), prints.of("a", {"n": 1}), prints.of("a", {"n": 2})
    assert one is again  # the cache: rendered once per definition and parameters
    assert one is not None and two is not None and one.sha256 != two.sha256
    assert prints.of("missing", {}) is None
