"""The CLI's fast path (cli/fast.py) answers exactly as the Typer app does (issue 23, item 11).

Every argument vector runs twice in this process: through the entry point (``cli.main``
of the package: the fast path first, Typer when it declines) and through the Typer app
alone (``cli.typer_main.main``). Same stdout bytes, same stderr bytes, same exit code, for good
and bad input, ``--json`` or text, a pipe or a terminal, an empty, missing, foreign, empty
or unreadable database and ``--db ""``. The vectors the fast path must serve are checked to
be served, so the comparison is not between Typer and itself."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operator_core.cli import fast, fast_read, parsing
from operator_core.cli import main as entry
from operator_core.cli.typer_main import main as typer_main

REPO = Path(__file__).resolve().parents[2]
Run = tuple[int, bytes, bytes]


def _capture(fn: Callable[[list[str]], int], argv: list[str]) -> Run:
    """``fn(argv)`` writing to pipes (UTF-8, not terminals); its code and bytes written."""
    out, err = io.BytesIO(), io.BytesIO()
    saved = sys.stdout, sys.stderr
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    try:
        code = fn(list(argv))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        written = out.getvalue(), err.getvalue()
        sys.stdout, sys.stderr = saved
    return code, *written


def served(argv: list[str]) -> bool:
    """Whether the fast path answers ``argv`` itself (to a pipe)."""
    return _capture(lambda a: int(fast.answer(a) is not None), argv)[0] == 1


def both(argv: list[str]) -> tuple[Run, Run]:
    return _capture(entry, argv), _capture(typer_main, argv)


@pytest.fixture(autouse=True)
def no_stray_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path leaves any OPERATOR_* setting it does not know to Typer: one in the
    shell that runs the tests must not turn "served" into "declined"."""
    for name in list(os.environ):
        if name.startswith("OPERATOR_") and name not in ("OPERATOR_DB", "OPERATOR_ACTOR"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths see the same "now": ``status`` counts attempts per minute of the last hour,
    and a minute may turn between the two runs."""
    from operator_core import clock

    now = clock.utcnow()
    monkeypatch.setattr(clock, "utcnow", lambda: now)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A database with every kind of row the read commands show, and odd files beside it."""
    tmp = tmp_path_factory.mktemp("fast")
    env = {"XDG_STATE_HOME": str(tmp / "state"), "OPERATOR_ACTOR": "tester"}
    saved = {k: os.environ.get(k) for k in [*env, "OPERATOR_DB"]}
    os.environ.update(env)
    db = str(tmp / "operator.db")
    setup = [
        ["propose", "check_health", "--reason", "first é 中"],
        ["propose", "restart_store", "--param", "store_id=1", "--reason", "r\x1b[31mred"],
        ["propose", "transfer_leader", "--param", "region_id=1", "--param", "to_store_id=2"]
        + ["--reason", "later", "--schedule-in", "5m"],
        ["propose-workflow", "wf one", "--step", "check_health", "--description", "d\u202e"],
        ["cancel", "3", "--reason", "no\tneed"],
        ["run", "--until-idle", "-q"],
        ["policy", "set", "approval-mode", "on", "--reason", "test"],
        ["propose", "restart_store", "--param", "store_id=s3", "--reason", "needs\x07 ok"],
        ["propose-workflow", "wf two", "--step", "check_health", "--step"]
        + ["restart_store store_id=2 delay=5s", "--description", "two"],
        # Automations: one enabled with an execution waiting for a runner, one disabled.
        ["automations", "new", "restart", "--from-template", "restart-if-still-open"]
        + ["--output", str(tmp / "restart.json")],
        ["automations", "apply", str(tmp / "restart.json"), "--note", "first é"],
        ["automations", "new", "drain", "--from-template", "drain-on-escalation"]
        + ["--output", str(tmp / "drain.json")],
        ["automations", "apply", str(tmp / "drain.json"), "--note", "later"],
        ["automations", "enable", "restart"],
        ["ticket", "open", "disk\tfull ‮", "--meta", "store_id=1"],
        ["automations", "run", "restart", "--ticket", "1"],
        ["propose", "check_health", "--reason", "for the ticket", "--ticket", "1"],
    ]
    for args in setup:
        code, _, err = _capture(typer_main, ["--db", db, "--subject", "demo", *args])
        assert code == 0, (args, err)
    (tmp / "foreign.db").touch()
    with sqlite3.connect(tmp / "foreign.db") as conn:
        conn.execute("CREATE TABLE foo (x)")
    (tmp / "empty.db").touch()
    (tmp / "text.db").write_text("not a database at all " * 100)
    (tmp / "dir.db").mkdir()
    yield tmp
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


READS = [
    ["status"],
    ["status", "--json"],
    ["actions", "list"],
    ["actions", "list", "--json"],
    ["actions", "list", "--limit", "2"],
    ["actions", "list", "--limit=1", "--json"],
    ["actions", "list", "--status", "completed"],
    ["actions", "list", "--json", "--status=validated"],
    ["actions", "list", "--status", "cancelled", "--limit", "100000"],
    ["workflows", "list"],
    ["workflows", "list", "--json", "--limit", "1"],
    ["workflows", "show", "1"],
    ["workflows", "show", "2", "--json"],
    ["workflows", "show", "--json", "1"],
    ["audit", "tail"],
    ["audit", "tail", "--json"],
    ["audit", "tail", "-n", "3"],
    ["audit", "tail", "--lines=5", "--json"],
    ["actions", "show", "1"],
    ["actions", "show", "1", "--json"],
    ["actions", "show", "--json", "2"],
    ["actions", "show", "3"],
    ["actions", "show", "4"],
    ["actions", "show", "6", "--json"],
    ["actions", "show", "7"],
    ["actions", "show", "8"],
    ["actions", "show", "5"],
    ["actions", "show", "8", "--json"],
    ["automations", "list"],
    ["automations", "list", "--json"],
    ["automations", "executions"],
    ["automations", "executions", "--json"],
    ["automations", "executions", "--status", "pending"],
    ["automations", "executions", "--status=PENDING", "--json"],
    ["automations", "executions", "--status", "completed"],
    ["automations", "executions", "--automation", "restart", "--limit", "1"],
    ["automations", "executions", "--automation=drain"],
    ["automations", "executions", "--limit", "1000", "--json"],
]

REFUSED = [
    ["status", "--json", "--json"],
    ["status", "extra"],
    ["status", "--help"],
    ["actions", "list", "--status", "nosuch"],
    ["actions", "list", "--status", ""],
    ["actions", "list", "--limit", "0"],
    ["actions", "list", "--limit", "100001"],
    ["actions", "list", "--limit", "-1"],
    ["actions", "list", "--limit", "1e3"],
    ["actions", "list", "--limit", " 5"],
    ["actions", "list", "--limit"],
    ["actions", "list", "--limit", "٣"],
    ["workflows", "show", "99"],
    ["workflows", "show", "0"],
    ["workflows", "show", "99999999999999999999999"],
    ["workflows", "show"],
    ["workflows", "show", "1", "2"],
    ["audit", "tail", "-n", "-3"],
    ["audit", "tail", "-n3"],
    ["audit", "tail", "-n", "3", "--lines", "4"],
    ["audit"],
    ["actions"],
    ["actions", "show", "99"],
    ["actions", "show", "0"],
    ["actions", "show"],
    ["actions", "show", "1", "2"],
    ["actions", "show", "x"],
    ["automations", "list", "extra"],
    ["automations", "executions", "--status", "odd"],
    ["automations", "executions", "--status", ""],
    ["automations", "executions", "--automation", "nope"],
    ["automations", "executions", "--limit", "0"],
    ["automations", "executions", "--limit", "1001"],
    ["automations", "executions", "1"],
    ["--version", "status"],
    ["--help"],
]


def _db_args(world: Path, which: str) -> list[str]:
    return {
        "good": ["--db", str(world / "operator.db")],
        "good=": [f"--db={world / 'operator.db'}"],
        "subject": ["--db", str(world / "operator.db"), "--subject", "demo"],
        "slashes": ["--db", f"{world}//./operator.db"],
        "missing": ["--db", str(world / "missing.db")],
        "empty-arg": ["--db", ""],
        "blank-arg": ["--db", " "],
        "foreign": ["--db", str(world / "foreign.db")],
        "zero-bytes": ["--db", str(world / "empty.db")],
        "text": ["--db", str(world / "text.db")],
        "directory": ["--db", str(world / "dir.db")],
        "default": [],
        "subject-blank": ["--db", str(world / "operator.db"), "--subject", " "],
        "actor": ["--db", str(world / "operator.db"), "--actor", "x"],
    }[which]


DBS = [
    "good",
    "good=",
    "subject",
    "slashes",
    "missing",
    "empty-arg",
    "blank-arg",
    "foreign",
    "zero-bytes",
    "text",
    "directory",
    "default",
    "subject-blank",
    "actor",
]


@pytest.mark.parametrize("args", READS + REFUSED, ids=" ".join)
@pytest.mark.parametrize("which", ["good", "good=", "slashes", "subject"])
def test_same_answer_on_a_database(world: Path, which: str, args: list[str]) -> None:
    argv = _db_args(world, which) + args
    fast_run, typer_run = both(argv)
    assert fast_run == typer_run
    if args in READS:
        assert served(argv), "the fast path should serve this"


@pytest.mark.parametrize("which", DBS)
@pytest.mark.parametrize(
    "args",
    [["status"], ["actions", "list", "--json"], ["audit", "tail"], ["actions", "show", "1"]],
)
def test_same_answer_whatever_the_file(world: Path, which: str, args: list[str]) -> None:
    fast_run, typer_run = both(_db_args(world, which) + args)
    assert fast_run == typer_run


def test_settings_the_fast_path_leaves_to_typer(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["--db", str(world / "operator.db"), "status", "--json"]
    for name, value in (
        ("OPERATOR_BUSY_TIMEOUT", "nan"),
        ("OPERATOR_SQLITE_SYNCHRONOUS", "sometimes"),
        ("OPERATOR_DB", " "),
    ):
        monkeypatch.setenv(name, value)
        fast_run, typer_run = both(argv if name != "OPERATOR_DB" else argv[2:])
        assert fast_run == typer_run
        assert fast_run[0] != 0, fast_run
        monkeypatch.delenv(name)
    monkeypatch.setenv("OPERATOR_DB", str(world / "operator.db"))
    fast_run, typer_run = both(["status"])
    assert fast_run == typer_run
    assert served(["status"])


def test_limits_agree_with_parsing() -> None:
    assert (fast.MAX_ID, fast.MAX_LIST) == (parsing.MAX_ID, parsing.MAX_LIST)


@given(values=st.lists(st.integers(0, 40), min_size=1, max_size=60))
def test_spark_draws_as_sparklines(values: list[int]) -> None:
    from sparklines import sparklines

    peak = max(1, *values)
    assert fast_read.spark(values, peak) == sparklines(values, minimum=0, maximum=peak)[0]


TOKENS = st.sampled_from(
    [
        "--json",
        "--limit",
        "--status",
        "-n",
        "--lines",
        "--lines=2",
        "--limit=3",
        "--status=failed",
        "1",
        "2",
        "0",
        "50",
        "validated",
        "completed",
        "",
        "--",
        "-",
        "--db",
        "x",
        "é",
    ]
)
COMMAND = st.sampled_from(
    [
        ["status"],
        ["actions", "list"],
        ["workflows", "list"],
        ["workflows", "show"],
        ["audit", "tail"],
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(which=st.sampled_from(DBS), command=COMMAND, rest=st.lists(TOKENS, max_size=4))
def test_random_vectors_answer_alike(
    world: Path, which: str, command: list[str], rest: list[str]
) -> None:
    argv = _db_args(world, which) + command + rest
    fast_run, typer_run = both(argv)
    assert fast_run == typer_run, argv


def test_a_terminal_gets_the_same_answer(world: Path) -> None:
    """On a terminal: ``status`` and ``actions show`` are served here, the tables by Rich
    (the fast path declines); through a real pseudo-terminal, each path in its own
    process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPERATOR_")}
    env["PYTHONPATH"] = os.pathsep.join(str(REPO / d) for d in ("core", "tui", "."))
    env["COLUMNS"] = "200"
    for _ in range(2):  # again if a minute turned between the runs (see frozen_now)
        outputs = [
            _on_terminal(env, world, module, args)
            for module in ("operator_core.cli", "operator_core.cli.typer_main")
            for args in (["status"], ["actions", "list"], ["actions", "show", "2"])
        ]
        if outputs[:3] == outputs[3:]:
            break
    assert outputs[:3] == outputs[3:]
    assert all(code == 0 for code, _, _ in outputs)


def _on_terminal(env: dict[str, str], world: Path, module: str, args: list[str]) -> Run:
    import pty

    code = (
        "import sys; from operator_core.cli.typer_main import main; sys.exit(main())"
        if module.endswith("main")
        else "import runpy; runpy.run_module('operator_core.cli', run_name='__main__')"
    )
    primary, secondary = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-c", code, "--db", str(world / "operator.db"), *args],
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=env,
        timeout=60,
        check=False,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    return done.returncode, b"".join(chunks), done.stderr


def test_version_as_importlib_metadata_reads_it() -> None:
    from importlib.metadata import version

    assert fast.version() == version("operator-ops")
    fast_run, typer_run = both(["--version"])
    assert fast_run == typer_run == (0, f"operator {version('operator-ops')}\n".encode(), b"")
    assert _capture(lambda a: 1 if fast.serve(a) is None else 0, ["--version"])[0] == 0


def test_a_spent_budget_is_left_to_typer(tmp_path: Path) -> None:
    """``status`` prints a spent budget's line; the fast path leaves that to Typer, and a
    budget whose slot has opened again prints nothing on either path."""
    from operator_core import clock

    db = str(tmp_path / "operator.db")
    assert _capture(typer_main, ["--db", db, "propose", "check_health", "--reason", "r"])[0] == 0
    now = clock.utcnow()
    for slot, fast_serves in ((now + timedelta(minutes=12), False), (now, True)):
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM budget_waits")
            conn.execute(
                "INSERT INTO budget_waits VALUES ('drain_store', 2, 3600, 2, ?, ?)",
                (clock.to_db(slot), clock.to_db(now)),
            )
        conn.close()
        for args in (["status"], ["status", "--json"]):
            argv = ["--db", db, *args]
            fast_run, typer_run = both(argv)
            assert fast_run == typer_run
            assert served(argv) is fast_serves
            assert (b"budget spent" in typer_run[1]) is (not fast_serves and args == ["status"])


@pytest.mark.parametrize(
    "url", ["postgresql://op@localhost/operator", "POSTGRES://op:secret@db:5432/ops?x=1"]
)
@pytest.mark.parametrize(
    "args", [["status"], ["actions", "show", "1"], ["automations", "list", "--json"]]
)
def test_a_postgresql_url_goes_to_typer(
    url: str, args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The fast path reads SQLite files only: a PostgreSQL URL, given or in OPERATOR_DB, is
    the Typer path's, even where a file of that name exists."""
    monkeypatch.chdir(tmp_path)
    lookalike = tmp_path / fast.posix_path(url)  # where the URL would point as a path
    lookalike.parent.mkdir(parents=True)
    made = _capture(
        typer_main, ["--db", str(lookalike), "propose", "check_health", "--reason", "r"]
    )
    assert made[0] == 0 and served(["--db", str(lookalike), *args])
    assert fast.answer(["--db", url, *args]) is None
    monkeypatch.setenv("OPERATOR_DB", url)
    assert fast.answer(args) is None


@pytest.mark.parametrize("kept", [True, False], ids=["facts-kept", "subject-loaded"])
def test_actions_show_alike_whether_the_subject_facts_were_kept(
    world: Path, kept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every action of the world, text and ``--json``: the same bytes on both paths, served,
    whether ``actions show`` answers from kept subject facts (cli/subject_facts.py) or loads
    the subject (the facts missing)."""
    import time

    import operator_core
    from operator_core.actions.registry import ActionRegistry
    from operator_core.cli import subject_facts
    from operator_core.subjects.demo import DemoSubject

    db = str(world / "operator.db")
    cache = Path(subject_facts.cache_path(db))
    saved = cache.read_bytes() if cache.exists() else None
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT action_name, parameters FROM action_proposals").fetchall()
    conn.close()
    count = len(rows)
    # Kept for each (``propose`` kept most; an automation's is kept by a show): as a process
    # started after every file of the tree was last changed keeps them.
    monkeypatch.setattr(operator_core, "STARTED_NS", time.time_ns() + 3 * 10**9)
    registry = ActionRegistry.from_subject(DemoSubject())
    subject_facts.remember(db, "demo", registry, [(n, json.loads(p)) for n, p in rows])
    hits = 0
    try:
        for action in range(1, count + 1):
            with sqlite3.connect(db) as conn:
                name, params = conn.execute(
                    "SELECT action_name, parameters FROM action_proposals WHERE id = ?",
                    (action,),
                ).fetchone()
            conn.close()
            if not kept:
                cache.unlink(missing_ok=True)
            hits += subject_facts.lookup(db, "demo", name, params) is not None
            for extra in ([], ["--json"]):
                argv = ["--db", db, "actions", "show", str(action), *extra]
                fast_run, typer_run = both(argv)
                assert fast_run == typer_run and fast_run[0] == 0, argv
                assert served(argv)
    finally:
        if saved is None:
            cache.unlink(missing_ok=True)
        else:
            cache.write_bytes(saved)
    assert (hits == count) if kept else hits == 0, (hits, count)
