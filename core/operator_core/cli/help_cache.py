"""``operator [COMMAND...] --help`` answered with the bytes Typer printed for the same
request last time, without starting Typer (about 10x a bare interpreter's start, mostly
building every command's click form and formatting it; docs/performance.md).

A cache, never a source of truth: Typer writes each text it prints, and ``serve`` prints
it again only where everything it could depend on is as it was: the argument vector, the
interpreter (version, prefix, ``sys.path``), the working directory, the whole environment,
whether stdout is a terminal and its size, stdout's encoding, and every module file the
Typer process had loaded (each known by its change time, size and inode, as Python's
bytecode cache knows a source). The environment is kept only as a BLAKE2 digest, so no
secret in it reaches the disk. A file changed less than ``own_files.SLACK_NS`` before the writing
process started is not trusted (the process may have read it before the change).

The cache lives in ``$XDG_CACHE_HOME/operator/help`` (else ``~/.cache/operator/help``), one
file per request, this user's and writable by no other; a file that is torn, foreign or
stale is ignored and written again. tests/cli/test_help_cache.py holds every command's help
equal, served either way, on a pipe and on terminals of several sizes.
"""

from __future__ import annotations

import os
import sys

from operator_core.cli.own_files import read_own, settled, stamp, write_whole

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

FORMAT = b"operator-help 1"
MAX_WORDS = 3
"""``operator actions show --help`` is the deepest command."""
MAX_BYTES = 1 << 20
MAX_FILES = 64
"""Requests kept (the oldest are removed)."""


def request(argv: list[str]) -> bool:
    """Whether ``argv`` only asks for help: command words, then ``--help``."""
    if not argv or argv[-1] != "--help" or len(argv) > MAX_WORDS + 1:
        return False
    return all(w.isascii() and w.replace("-", "").isalpha() and w[0] != "-" for w in argv[:-1])


def _directory() -> str | None:
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):  # the XDG rule: a relative value is ignored
        home = os.environ.get("HOME")
        if not home:
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "operator", "help")


def _digest(argv: list[str]) -> str:
    """Of everything the text may depend on but the module files."""
    try:
        from _blake2 import blake2b  # hashlib's own, without loading OpenSSL (4 ms)
    except ImportError:  # an interpreter built without it
        from hashlib import blake2b
    try:
        size: Any = tuple(os.get_terminal_size(1))
    except (OSError, ValueError):
        size = None
    out = sys.stdout
    facts = (
        FORMAT,
        argv,
        sys.version,
        sys.prefix,
        sys.executable,
        sys.path,
        os.getcwd(),
        sorted(os.environ.items()),
        os.isatty(1),
        size,
        getattr(out, "encoding", None),
        getattr(out, "errors", None),
    )
    return blake2b(repr(facts).encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()


def _stamp(path: str) -> bytes | None:
    known = stamp(path)
    return None if known is None else b"%d %d %d" % tuple(known)


def serve(argv: list[str]) -> int | None:
    """Print the kept help for ``argv`` and return 0, or None (Typer answers)."""
    if not request(argv):
        return None
    directory, out = _directory(), sys.stdout
    if directory is None or out is None or not hasattr(out, "buffer"):
        return None
    try:
        digest = _digest(argv)
    except OSError:  # a working directory that is gone
        return None
    body = _read(os.path.join(directory, digest), digest)
    if body is None:
        return None
    out.flush()
    out.buffer.write(body)
    out.buffer.flush()
    return 0


def _read(path: str, digest: str) -> bytes | None:
    """The text kept at ``path``, if the file is ours to trust, whole, and every file it
    names is as it was."""
    data = read_own(path, MAX_BYTES)
    if data is None:
        return None
    head, _, rest = data.partition(b"\n")
    fields = head.split(b" ")
    if len(fields) != 5 or b" ".join(fields[:2]) != FORMAT or fields[2] != digest.encode():
        return None
    if not fields[3].isdigit() or not fields[4].isdigit():
        return None
    lines = rest.split(b"\n", int(fields[3]))
    if len(lines) != int(fields[3]) + 1:
        return None
    body = lines.pop()
    if len(body) != int(fields[4]):
        return None  # torn
    for line in lines:
        parts = line.split(b" ", 3)
        if len(parts) != 4 or _stamp(os.fsdecode(parts[3])) != b" ".join(parts[:3]):
            return None
    return body


class Capture:
    """Stands for stdout while Typer prints help: passes everything on, and keeps it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.text: list[str] = []
        self.whole = True
        """False once something was written that is not text (click probes with b"")."""

    def write(self, text: Any) -> int:
        if isinstance(text, str):
            self.text.append(text)
        elif text:
            self.whole = False
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def remember(argv: list[str], capture: Capture) -> None:
    """Keep what Typer printed for ``argv``. Best effort: a cache nobody can write is no
    error, and one whose files are too new to be sure of is not kept."""
    from operator_core import STARTED_NS

    directory = _directory()
    if directory is None or not capture.text or not capture.whole:
        return
    try:
        digest = _digest(argv)
        out = sys.stdout
        body = "".join(capture.text).encode(out.encoding, out.errors or "strict")
    except (OSError, UnicodeError, AttributeError, TypeError):
        return
    names = sorted(
        {
            m.__file__
            for m in list(sys.modules.values())
            if isinstance(getattr(m, "__file__", None), str)
        }
    )
    lines = []
    for name in names:
        known = stamp(name)
        if known is None or "\n" in name or not settled(known, STARTED_NS):
            return
        lines.append(b"%d %d %d %s" % (*known, os.fsencode(name)))
    head = b"%s %s %d %d" % (FORMAT, digest.encode(), len(lines), len(body))
    _write(directory, digest, b"\n".join([head, *lines, body]))


def _write(directory: str, digest: str, data: bytes) -> None:
    """In a directory only this user can write; the oldest files beyond ``MAX_FILES`` are
    removed."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if write_whole(os.path.join(directory, digest), data):
            kept = sorted(os.scandir(directory), key=lambda e: e.stat().st_mtime_ns)
            for entry in kept[:-MAX_FILES]:
                os.unlink(entry.path)
    except OSError:
        pass
