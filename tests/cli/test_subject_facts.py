"""``actions show`` answers from the subject facts a CLI process kept (cli/subject_facts.py)
exactly as from the subject itself, and only while they hold: a kept entry, a missing, a
corrupt or a foreign one, one whose watched file changed, and a runbook edited after the
approval each give the bytes the Typer command prints (which loads the subject), and
nothing but a current entry is answered without the subject. The approval check never says
"still matches" where the subject's own fingerprint differs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import operator_core
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from operator_core.cli import main as entry
from operator_core.cli import subject_facts
from operator_core.cli.typer_main import main as typer_main
from operator_core.subjects import loader

from tests.cli.test_fast_path import _capture, both, served

RUNBOOK = """
[actions.say]
argv = ["echo", "{word}"]
params = { word = { type = "string" } }
requires_approval = true
budget = { runs = 3, per = "1h" }
"""
EDITED = RUNBOOK.replace('["echo", "{word}"]', '["echo", "-n", "{word}"]')


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("OPERATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def after_files(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if this process had started after the test wrote its files: a process keeps no
    facts of a file changed shortly before it started (it may have read the older one)."""
    monkeypatch.setattr(operator_core, "STARTED_NS", time.time_ns() + 3 * 10**9)
    yield


def typer(*argv: str) -> tuple[int, bytes, bytes]:
    return _capture(typer_main, list(argv))


def _refuse(spec: str | None) -> None:
    raise AssertionError("the subject was loaded")


def no_subject(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here, loading the subject fails: whatever is served is served from kept facts."""
    monkeypatch.setattr(loader, "load_subject", _refuse)


def runbook_world(tmp_path: Path) -> tuple[list[str], Path]:
    book = tmp_path / "ops.toml"
    book.write_text(RUNBOOK)
    glob = ["--db", str(tmp_path / "operator.db"), "--subject", f"commands:{book}"]
    return glob, book


def propose_and_approve(glob: list[str]) -> None:
    assert typer(*glob, "propose", "say", "--param", "word=hi", "--reason", "r")[0] == 0
    assert typer(*glob, "approve", "1")[0] == 0


def same_show(glob: list[str], action: str = "1") -> list[bytes]:
    """Each form of ``actions show`` gives the same bytes on both paths, served here."""
    outs = []
    for extra in ([], ["--json"]):
        argv = [*glob, "actions", "show", action, *extra]
        fast_run, typer_run = both(argv)
        assert fast_run == typer_run
        assert fast_run[0] == 0, fast_run
        assert served(argv)
        outs.append(fast_run[1])
    return outs


def shows(glob: list[str], action: str = "1") -> list[tuple[int, bytes, bytes]]:
    """What the Typer command prints for each form of ``actions show`` (it loads the
    subject)."""
    return [typer(*glob, "actions", "show", action, *extra) for extra in ([], ["--json"])]


def served_shows(glob: list[str], action: str = "1") -> list[tuple[int, bytes, bytes]]:
    """The same through the entry point, each served by the fast path."""
    argv = [*glob, "actions", "show", action]
    assert served(argv) and served([*argv, "--json"])
    return [_capture(entry, [*argv, *extra]) for extra in ([], ["--json"])]


def test_a_proposal_keeps_what_show_needs(
    tmp_path: Path, after_files: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    glob, _ = runbook_world(tmp_path)
    propose_and_approve(glob)
    expected = shows(glob)
    no_subject(monkeypatch)
    assert served_shows(glob) == expected
    text = expected[0][1].decode()
    assert "will run: echo hi" in text and "execution budget: 3 per 1h" in text
    assert "(still matches)" in text


def test_the_demo_subject_is_kept_too(
    tmp_path: Path, after_files: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    glob = ["--db", str(tmp_path / "operator.db")]
    for args in (
        ["propose", "drain_store", "--param", "store_id=s2", "--reason", "r"],
        ["approve", "1"],
        ["propose", "transfer_leader", "--param", "to_store_id=2", "--param", "region_id=1"],
    ):
        assert (
            typer(*glob, *args, *(["--reason", "r"] if args[1] == "transfer_leader" else []))[0]
            == 0
        ), args
    expected = {a: shows(glob, a) for a in ("1", "2")}
    no_subject(monkeypatch)
    for action in ("1", "2"):
        assert served_shows(glob, action) == expected[action]
    assert b"execution budget: 2 per 1h" in expected["1"][0][1]
    # Parameters in their stored order (sorted), as the subject is handed them.
    assert b"transfer_leader(region_id=1, to_store_id='2')" in expected["2"][0][1]


def corrupt(cache: Path, how: str) -> None:
    data = json.loads(cache.read_text())
    (entry,) = data["subjects"].values()
    if how == "garbage":
        cache.write_bytes(b"\x00not json")
    elif how == "truncated":
        cache.write_text(cache.read_text()[:-40])
    elif how == "format":
        data["format"] = 99
        cache.write_text(json.dumps(data))
    elif how == "types":
        entry["runs"] = {k: "x" for k in entry["runs"]}
        cache.write_text(json.dumps(data))
    elif how == "files":
        entry["files"] = [["/no/such/file.py", 1, 2, 3]]
        cache.write_text(json.dumps(data))
    elif how == "module-changed":
        # One watched module as if edited since: another change time.
        entry["files"][0][1] += 1
        cache.write_text(json.dumps(data))
    elif how == "other-interpreter":
        data["subjects"] = {
            k.replace(sys.prefix, "/elsewhere"): v for k, v in data["subjects"].items()
        }
        cache.write_text(json.dumps(data))
    elif how == "group-writable":
        cache.chmod(0o664)
    elif how == "missing":
        cache.unlink()


@pytest.mark.parametrize(
    "how",
    [
        "garbage",
        "truncated",
        "format",
        "types",
        "files",
        "module-changed",
        "other-interpreter",
        "group-writable",
        "missing",
    ],
)
def test_facts_not_known_for_sure_are_taken_of_the_subject(
    tmp_path: Path, after_files: None, how: str
) -> None:
    glob, book = runbook_world(tmp_path)
    propose_and_approve(glob)
    cache = Path(subject_facts.cache_path(glob[1]))
    corrupt(cache, how)
    assert subject_facts.lookup(glob[1], glob[3], "say", '{"word":"hi"}') is None
    expected = shows(glob)
    assert [(0, out, b"") for out in same_show(glob)] == expected
    # The show that loaded the subject kept its facts again, in a file of its own.
    assert subject_facts.lookup(glob[1], glob[3], "say", '{"word":"hi"}') is not None
    assert cache.stat().st_mode & 0o777 == 0o600


def test_a_runbook_edited_after_the_approval_is_no_longer_a_match(
    tmp_path: Path, after_files: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    glob, book = runbook_world(tmp_path)
    propose_and_approve(glob)
    assert subject_facts.lookup(glob[1], glob[3], "say", '{"word":"hi"}') is not None
    book.write_text(EDITED)  # what runs changed: the kept facts no longer hold
    assert subject_facts.lookup(glob[1], glob[3], "say", '{"word":"hi"}') is None
    text, as_json = same_show(glob)
    assert b"NO LONGER MATCHES" in text and b"will run: echo -n hi" in text
    assert json.loads(as_json)["approval"]["matches"] is False
    # Its facts, kept again, are the edited file's; a mismatch is still explained by the
    # subject (loaded again), never answered from them.
    kept = subject_facts.lookup(glob[1], glob[3], "say", '{"word":"hi"}')
    assert kept is not None and kept[0].startswith("echo -n hi")
    no_subject(monkeypatch)
    argv = [*glob, "actions", "show", "1"]
    assert not served(argv)


def test_a_file_changed_just_before_the_process_started_is_not_trusted(tmp_path: Path) -> None:
    """This process imported Operator before the test wrote the runbook: it keeps nothing."""
    glob, _ = runbook_world(tmp_path)
    propose_and_approve(glob)
    assert subject_facts.lookup(glob[1], glob[3], "say", '{"word":"hi"}') is None
    assert not Path(subject_facts.cache_path(glob[1])).exists()


def test_a_plugin_subject_is_not_kept(tmp_path: Path) -> None:
    glob = [
        "--db",
        str(tmp_path / "operator.db"),
        "--subject",
        "operator_core.subjects.demo:DemoSubject",
    ]
    assert typer(*glob, "propose", "check_health", "--reason", "r")[0] == 0
    assert not Path(subject_facts.cache_path(glob[1])).exists()
    fast_run, typer_run = both([*glob, "actions", "show", "1"])
    assert fast_run == typer_run and fast_run[0] == 0


HTTP = """
[actions.hook]
url = "https://example.com/{what}"
method = "POST"
params = { what = { type = "string" } }
body = { token = "{secret:T}" }
"""


def test_the_facts_code_is_all_watched(tmp_path: Path) -> None:
    """Loading each built-in subject, previewing and fingerprinting its actions imports no
    module of operator_core that kept facts do not watch (``is_code``): an edit of any code
    they were computed by makes them stale."""
    code = """
import sys
from operator_core.actions.fingerprint import Fingerprinter
from operator_core.actions.registry import ActionRegistry
from operator_core.cli.subject_facts import is_code
from operator_core.subjects.loader import load_subject
for spec in sys.argv[1:]:
    registry = ActionRegistry.from_subject(load_subject(spec))
    for d in registry.list_definitions():
        registry.subject.preview(d.name, {"word": "w", "what": "w"})
        Fingerprinter(registry).of(d.name, {"word": "w", "what": "w"})
        d.budget and d.budget.describe()
own = [n for n in sys.modules if n.startswith("operator_core.") and ".cli" not in n]
print(len(own), [n for n in own if not is_code(n, sys.modules[n])])
"""
    (tmp_path / "c.toml").write_text(RUNBOOK)
    (tmp_path / "h.toml").write_text(HTTP)
    specs = ["demo", f"commands:{tmp_path / 'c.toml'}", f"http:{tmp_path / 'h.toml'}"]
    done = subprocess.run(
        [sys.executable, "-c", code, *specs],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    count, outside = done.stdout.split(" ", 1)
    assert int(count) > 10 and outside.strip() == "[]", done.stdout


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(word=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40))
def test_any_parameter_is_kept_and_shown_alike(
    tmp_path: Path, after_files: None, monkeypatch: pytest.MonkeyPatch, word: str
) -> None:
    """Whatever the parameter's text (quotes, escapes, accents, control characters), the
    facts ``propose`` kept answer for it exactly as the subject would, or not at all."""
    book = tmp_path / "ops.toml"
    if not book.exists():
        book.write_text(RUNBOOK)
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        glob = ["--db", f"{tmp}/operator.db", "--subject", f"commands:{book}"]
        made = typer(*glob, "propose", "say", "--param", f"word={word}", "--reason", "r")
        assume(made[0] == 0)
        expected = shows(glob)
        with monkeypatch.context() as m:
            m.setattr(loader, "load_subject", _refuse)
            assert served_shows(glob) == expected
