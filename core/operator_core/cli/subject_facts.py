"""What ``actions show`` asks of the subject (what will run, the budget, the fingerprint of
what runs now), kept beside the database by the CLI processes that loaded the subject
anyway (``propose``, ``propose-workflow``, ``actions show``), so that the next ``actions
show`` of the same action answers without loading it (pydantic; docs/performance.md).

A cache, never a source of truth: ``lookup`` answers only where everything the facts
depend on is as it was when they were taken, and None otherwise (the caller loads the
subject). They depend on the subject's spec (a runbook's file, as resolved, and ``HOME``,
which its ``cwd`` may start with); the code that computed them (every loaded module of
``operator_core``'s actions, subjects and models and its top-level modules, each file known
by its change time, size and inode, as Python's bytecode cache knows a source; pydantic by
its version's files); the interpreter, its prefix and ``sys.path``; and the action's
parameters as stored (the facts are taken of that text, parsed as a reader parses it). A
plugin subject (``module:Class``) may read anything, so its facts are not kept. A file
changed less than ``own_files.SLACK_NS`` before the writing process started is not trusted (the
process may have read it before the change).
"""

from __future__ import annotations

import os
import sys

from operator_core.cli.own_files import read_own, settled, stamp, write_whole
from operator_core.jsontext import dumps, loads

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

FORMAT = 1
"""Of the file: another form is never read as this one."""
CODE = ("operator_core.actions", "operator_core.subjects", "operator_core.model")
"""The packages the facts are computed by (with ``operator_core``'s top-level modules;
tests/cli/test_subject_facts.py holds a subject's and the fingerprint's imports to them)."""
VERSIONS = ("pydantic.version", "pydantic_core._pydantic_core")
"""Rewritten by any upgrade of the library that dumps the definitions."""
RUNBOOKS = ("commands", "http", "runbook")
MAX_RUNS = 256
"""Actions whose preview and fingerprint an entry keeps (the newest)."""
MAX_ENTRIES = 8
"""Entries kept (one per subject and interpreter set-up, the newest)."""


def cache_path(db: str) -> str:
    return db + ".subjects"


def _spec(spec: str) -> tuple[str, str | None] | None:
    """(the spec as the loader reads it, the runbook file it would load), or None where the
    facts are not kept."""
    spec = spec.strip()
    if spec == "demo":
        return spec, None
    kind, _, rest = spec.partition(":")
    if kind in RUNBOOKS and rest:
        return spec, os.path.realpath(os.path.expanduser(rest))
    return None


def _stamp(spec: str, runbook: str | None) -> list[Any]:
    core = sys.modules["operator_core"].__file__
    home = os.environ.get("HOME") if runbook else None
    return [FORMAT, sys.version, sys.prefix, list(sys.path), core, spec, runbook, home]


def is_code(name: str, module: object) -> bool:
    """Whether the facts may depend on this loaded module's file."""
    if name in VERSIONS or any(name == p or name.startswith(p + ".") for p in CODE):
        return True
    top = name.startswith("operator_core.") and name.count(".") == 1
    return name == "operator_core" or top and not hasattr(module, "__path__")


def _key(action: str, params_text: str) -> str:
    return action + "\n" + params_text


def _read(path: str) -> dict[str, Any] | None:
    """The cache file's entries, if it is ours to trust: this user's, writable by no other."""
    data = read_own(path, 4 << 20)
    if data is None:
        return None
    try:
        found = loads(data.decode("utf-8"))
    except ValueError:  # a torn or foreign file: as if there were none
        return None
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        return None
    subjects = found.get("subjects")
    return subjects if isinstance(subjects, dict) else None


def lookup(db: str, spec: str, action: str, params_text: str) -> tuple[Any, Any, str] | None:
    """(the preview, the budget's description, the fingerprint's SHA-256) of ``action``
    with these stored parameters through this subject now, or None: not known for sure."""
    parsed = _spec(spec)
    if parsed is None:
        return None
    entries = _read(cache_path(db))
    entry = entries.get(dumps(_stamp(*parsed))) if entries else None
    if not isinstance(entry, dict):
        return None
    files, budgets, runs = entry.get("files"), entry.get("budgets"), entry.get("runs")
    if not isinstance(budgets, dict) or not isinstance(runs, dict) or action not in budgets:
        return None
    found, budget = runs.get(_key(action, params_text)), budgets[action]
    if not isinstance(found, list) or len(found) != 2 or not _text(budget):
        return None
    preview, sha256 = found
    if not isinstance(sha256, str) or not _text(preview) or not _current(files):
        return None
    if parsed[1] is not None and not any(f[0] == parsed[1] for f in files):
        return None  # the runbook's own file is among those watched
    return preview, budget, sha256


def _text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _current(files: Any) -> bool:
    """Whether every file of an entry is as it was when its facts were taken."""
    if not isinstance(files, list):
        return False
    for f in files:
        if not isinstance(f, list) or len(f) != 4 or not isinstance(f[0], str):
            return False
        if stamp(f[0]) != f[1:]:
            return False
    return True


def _still(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("runs"), dict)
        and _current(entry.get("files"))
    )


def _files(runbook: str | None, started_ns: int) -> list[list[Any]] | None:
    """The files the facts were computed from, as they are now; None if one changed too
    recently to be sure this process read it as it is."""
    names = {
        m.__file__
        for n, m in list(sys.modules.items())
        if is_code(n, m) and isinstance(getattr(m, "__file__", None), str)
    }
    if runbook is not None:
        names.add(runbook)
    out = []
    for name in sorted(names):
        known = stamp(name)
        if known is None or not settled(known, started_ns):
            return None
        out.append([name, *known])
    return out


def remember(db: str, spec: str, registry: Any, actions: list[tuple[str, dict[str, Any]]]) -> None:
    """Keep the facts of ``actions`` (name, parameters) through ``registry``'s subject, for
    a SQLite database at ``db``. Best effort: a cache nobody can write is no error."""
    from operator_core import STARTED_NS
    from operator_core.actions.fingerprint import Fingerprinter
    from operator_core.db.encode import dumps as stored

    parsed = _spec(spec)
    subject = registry.subject
    if parsed is None or subject is None:
        return
    spec, runbook = parsed
    if runbook is not None and str(getattr(subject, "path", "")) != runbook:
        return  # the subject loaded another file than a reader would look at
    fingerprints = Fingerprinter(registry)
    runs: dict[str, list[Any]] = {}
    for name, parameters in actions:
        if name not in registry:
            continue
        text = stored(parameters)
        try:
            # Of the parameters as a reader parses them (their order is the stored one).
            preview = subject.preview(name, loads(text))
            now = fingerprints.of(name, loads(text))
        except Exception:  # a preview that fails is not kept: show says so the long way
            continue
        if now is not None:
            runs[_key(name, text)] = [preview, now.sha256]
    files = _files(runbook, STARTED_NS)
    if not runs or files is None:
        return
    path = cache_path(db)
    entries = _read(path) or {}
    stamp = dumps(_stamp(spec, runbook))
    entry = entries.pop(stamp, None)
    if _still(entry):
        # Its facts hold: what either process read is as it was (the union is watched).
        files = sorted({f[0]: f for f in [*entry["files"], *files]}.values())
    else:
        entry = {"runs": {}}
    entry["files"] = files
    entry["budgets"] = {
        d.name: d.budget.describe() if d.budget else None for d in registry.list_definitions()
    }
    kept = {k: v for k, v in entry["runs"].items() if k not in runs}
    entry["runs"] = dict(list({**kept, **runs}.items())[-MAX_RUNS:])
    entries[stamp] = entry  # the newest last
    entries = dict(list(entries.items())[-MAX_ENTRIES:])
    write_whole(path, dumps({"format": FORMAT, "subjects": entries}).encode("ascii"))


def keep(cfg: Any, registry: Any, actions: list[tuple[str, dict[str, Any]]]) -> None:
    """``remember`` for a Typer command that loaded the subject (``cfg``: its ``Config``):
    facts are kept for a SQLite database, the one the fast path reads."""
    if cfg.target.url is None:
        remember(str(cfg.db), cfg.subject_spec, registry, actions)
