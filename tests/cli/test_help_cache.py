"""``operator ... --help`` served from the text Typer printed before (cli/help_cache.py) is
byte for byte what Typer prints, for every command, piped and on terminals of several
sizes; anything the text could depend on that changed, and any cache file that is torn,
foreign or not this user's alone, sends the request back to Typer."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from operator_core.cli import help_cache
from operator_core.cli.typer_main import app

REPO = Path(__file__).resolve().parents[2]
Run = tuple[int, bytes, bool]
"""(exit code, stdout, whether Typer was imported)."""


def _requests() -> list[list[str]]:
    """Every command's help request, groups and their commands."""
    out: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        out.append([*path, "--help"])
        for name, sub in getattr(command, "commands", {}).items():  # a group's
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def _env(cache: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "HOME")}
    env["PYTHONPATH"] = os.pathsep.join(str(REPO / d) for d in ("core", "tui", "."))
    if cache is not None:  # without it, no cache: what Typer prints
        env["XDG_CACHE_HOME"] = str(cache)
    env.update(extra)
    return env


def _command(argv: list[str]) -> list[str]:
    # The process's own command line, as the installed ``operator`` runs it.
    return [sys.executable, "-X", "importtime", "-m", "operator_core.cli", *argv]


def _typer_loaded(stderr: bytes) -> bool:
    names = (line.rpartition(b"|")[2].strip() for line in stderr.splitlines())
    return any(name == b"typer" or name.startswith(b"typer.") for name in names)


def piped(argv: list[str], env: dict[str, str]) -> Run:
    done = subprocess.run(_command(argv), env=env, capture_output=True, timeout=60, check=False)
    return done.returncode, done.stdout, _typer_loaded(done.stderr)


def on_terminal(argv: list[str], env: dict[str, str], size: tuple[int, int]) -> Run:
    """Through a real pseudo-terminal of ``size`` (columns, rows)."""
    import fcntl
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    columns, rows = size
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(_command(argv), stdout=secondary, stderr=subprocess.PIPE, env=env)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    stderr = process.stderr.read() if process.stderr else b""
    return process.wait(timeout=60), b"".join(chunks), _typer_loaded(stderr)


def kept(cache: Path) -> list[Path]:
    directory = cache / "operator" / "help"
    return sorted(directory.iterdir()) if directory.exists() else []


def test_every_command_s_help_is_the_same_from_the_cache(tmp_path: Path) -> None:
    env = _env(tmp_path)
    requests = _requests()
    assert len(requests) > 30 and ["actions", "show", "--help"] in requests
    for argv in requests:
        first = piped(argv, env)
        second = piped(argv, env)
        assert first[0] == 0 and first[2], argv  # Typer printed it
        assert second == (0, first[1], False), argv  # the same bytes, without Typer
    assert len(kept(tmp_path)) == len(requests)


@pytest.mark.parametrize(
    ("argv", "wraps"),
    [(["--help"], True), (["propose", "--help"], True), (["actions", "show", "--help"], False)],
)
def test_each_terminal_size_gets_typer_s_text_for_it(
    tmp_path: Path, argv: list[str], wraps: bool
) -> None:
    """Kept per size: a text kept for one terminal is never printed on another."""
    env, uncached = _env(tmp_path), _env(None)
    sizes = [(200, 50), (60, 20), (45, 10)]
    for size in sizes:
        on_terminal(argv, env, size)
    for size in sizes:
        reference = on_terminal(argv, uncached, size)
        assert reference[0] == 0 and reference[2]
        assert on_terminal(argv, env, size) == (0, reference[1], False), size
    assert len(kept(tmp_path)) == len(sizes)
    # Help is cut to the terminal's width: where it wraps, the sizes really differ.
    assert (len({on_terminal(argv, uncached, size)[1] for size in sizes}) > 1) is wraps


def test_another_environment_is_another_request(tmp_path: Path) -> None:
    """The environment can change the text (COLUMNS on a pipe does): each is kept apart."""
    for columns in ("50", "120", "50"):
        env = _env(tmp_path, COLUMNS=columns)
        reference = piped(["propose", "--help"], _env(None, COLUMNS=columns))
        assert piped(["propose", "--help"], env)[:2] == reference[:2]
    assert len(kept(tmp_path)) == 2
    assert piped(["propose", "--help"], _env(tmp_path, COLUMNS="50"))[2] is False


def test_no_setting_s_value_reaches_the_disk(tmp_path: Path) -> None:
    secret = "hunter2-c3f1d9a7e2"
    env = _env(tmp_path, OPERATOR_SECRET_TOKEN=secret, PGPASSWORD=secret)
    piped(["--help"], env)
    assert piped(["--help"], env)[2] is False
    (path,) = kept(tmp_path)
    assert secret.encode() not in path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def _spoil_a_watched_file(text: bytes) -> bytes:
    head, first, rest = text.split(b"\n", 2)
    ctime, size, inode, name = first.split(b" ", 3)
    return b"\n".join([head, b" ".join([ctime, size, b"%d" % (int(inode) + 1), name]), rest])


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_spoil_a_watched_file, id="a-watched-file-changed"),
        pytest.param(lambda text: text[:-10], id="torn"),
        pytest.param(lambda text: text + b"more", id="longer"),
        pytest.param(lambda text: b"garbage\n" + text, id="garbage"),
        pytest.param(
            lambda text: text.replace(b"operator-help 1", b"operator-help 2"), id="format"
        ),
        pytest.param(lambda text: b"", id="empty"),
    ],
)
def test_a_stale_or_broken_file_goes_back_to_typer(
    tmp_path: Path, spoil: Callable[[bytes], bytes]
) -> None:
    env = _env(tmp_path)
    reference = piped(["actions", "--help"], env)
    (path,) = kept(tmp_path)
    good = path.read_bytes()
    path.write_bytes(spoil(good))
    assert piped(["actions", "--help"], env) == (0, reference[1], True)
    assert path.read_bytes() == good  # kept again, whole
    assert piped(["actions", "--help"], env) == (0, reference[1], False)


def test_a_file_others_could_write_is_not_read(tmp_path: Path) -> None:
    env = _env(tmp_path)
    reference = piped(["--help"], env)
    (path,) = kept(tmp_path)
    path.chmod(0o620)
    assert piped(["--help"], env) == (0, reference[1], True)
    path.chmod(0o600)
    assert piped(["--help"], env)[2] is False


def test_a_file_of_another_user_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(tmp_path)
    piped(["--help"], env)
    (path,) = kept(tmp_path)
    digest = path.name
    assert help_cache._read(str(path), digest) is not None
    monkeypatch.setattr(help_cache.os, "geteuid", lambda: os.getuid() + 1)
    assert help_cache._read(str(path), digest) is None


def test_errors_and_options_are_never_kept(tmp_path: Path) -> None:
    env = _env(tmp_path)
    code, _, typer_loaded = piped(["nosuch", "--help"], env)
    assert code == 2 and typer_loaded
    assert piped(["--db", str(tmp_path / "x.db"), "--help"], env)[0] == 0
    assert kept(tmp_path) == []


@pytest.mark.parametrize(
    ("argv", "asks"),
    [
        (["--help"], True),
        (["actions", "show", "--help"], True),
        (["propose-workflow", "--help"], True),
        (["--db", "x", "--help"], False),
        (["actions", "--help", "show"], False),
        (["propose", "check_health", "--help"], False),
        (["a", "b", "c", "d", "--help"], False),
        (["--help", "--help"], False),
        (["-h"], False),
        ([], False),
        (["ａｃｔｉｏｎｓ", "--help"], False),
    ],
)
def test_only_bare_help_requests_are_kept(argv: list[str], asks: bool) -> None:
    assert help_cache.request(argv) is asks


def test_a_text_taken_beside_a_fresh_change_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module file changed just before the process started may have been read before
    the change: what it printed is not kept."""
    import operator_core

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(operator_core, "STARTED_NS", 0)  # every file is newer
    with open(os.devnull, "w") as devnull:
        capture = help_cache.Capture(devnull)
        capture.write("Usage: operator\n")
        help_cache.remember(["--help"], capture)
    assert kept(tmp_path) == []
