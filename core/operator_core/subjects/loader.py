"""Resolve a ``--subject`` value to a Subject instance."""

from __future__ import annotations

import importlib
import os

from operator_core.actions.subject import Subject
from operator_core.errors import ConfigError


def load_subject(spec: str | None) -> Subject:
    """``demo``; ``module:Class`` (a Python plugin); ``commands:PATH.toml`` or
    ``http:PATH.toml`` (runbook files)."""
    spec = (spec or os.environ.get("OPERATOR_SUBJECT") or "demo").strip()
    if spec == "demo":
        from operator_core.subjects.demo import DemoSubject

        return DemoSubject()
    kind, _, rest = spec.partition(":")
    if kind in ("commands", "http", "runbook"):
        if not rest:
            raise ConfigError(f"--subject {kind}: needs a file, e.g. {kind}:runbook.toml")
        try:
            from operator_core.subjects.runbook import load_runbook_subject
        except ImportError as exc:
            raise ConfigError(f"the {kind} subject is not available in this build") from exc
        return load_runbook_subject(rest, kind=kind)
    if not rest:
        raise ConfigError(
            f"unknown subject {spec!r}: use demo, commands:FILE.toml, http:FILE.toml or "
            "module:Class"
        )
    try:
        module = importlib.import_module(kind)
    except ImportError as exc:
        raise ConfigError(f"cannot import subject module {kind!r}: {exc}") from exc
    cls = getattr(module, rest, None)
    if cls is None:
        raise ConfigError(f"module {kind!r} has no class {rest!r}")
    try:
        subject = cls()
    except Exception as exc:
        raise ConfigError(f"cannot create subject {spec}: {exc}") from exc
    if not isinstance(subject, Subject):
        raise ConfigError(
            f"{spec} is not a Subject: it needs name, action_definitions(), execute(), "
            "preview() and aclose()"
        )
    return subject
