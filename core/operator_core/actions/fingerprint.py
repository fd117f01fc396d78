"""What an approval is bound to: a fingerprint of exactly what will run.

The fingerprint is a SHA-256 over a canonical JSON of the action's definition (the fields
that change what runs, not its description), the subject's class, the parameters and the
rendered command line or request with secrets and ticket fields as placeholders. A secret's
or a template's edit that renders the same placeholders leaves it unchanged; an edited argv,
URL, timeout or parameter type changes it, and the runner then refuses the attempt.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from operator_core.errors import ApprovalError

if TYPE_CHECKING:
    from operator_core.actions.definitions import ActionDefinition
    from operator_core.actions.registry import ActionRegistry
    from operator_core.actions.subject import Subject
    from operator_core.db.fingerprints import Binding

VERSION = 1
"""Of the canonical form: a new form must never compare equal to an old one."""

CHANGED = "what runs changed since approval"
"""How a voided approval's reason starts."""

# Definition fields that say nothing about what runs.
_NOT_RUN = {"description", "risk_level", "requires_approval"}
_CACHE_SIZE = 1024
_SHOWN = 40


class ApprovalVoided(ApprovalError):
    """An approved attempt did not start: what it would run differs from what was approved
    (the action is back awaiting approval)."""


@dataclass(frozen=True)
class Fingerprint:
    """The canonical JSON of what runs, and its SHA-256."""

    sha256: str
    canonical: str

    @property
    def short(self) -> str:
        return self.sha256[:12]

    @property
    def runs(self) -> str | None:
        """The rendered command or request (secrets as placeholders), for display."""
        value = json.loads(self.canonical).get("runs")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ApprovalCheck:
    """An action's approval fingerprint and whether it still matches what this process
    would run now (``matches`` None: not bound, or no subject here to compare with)."""

    sha256: str | None
    runs: str | None
    matches: bool | None
    differs: str | None
    voided: str | None

    @classmethod
    def of(cls, bound: Binding, now: Fingerprint | None, can_render: bool) -> ApprovalCheck:
        if bound.sha256 is None or bound.canonical is None:
            return cls(None, None, None, None, bound.voided)
        runs = Fingerprint(bound.sha256, bound.canonical).runs
        if now is None and not can_render:
            return cls(bound.sha256, runs, None, None, bound.voided)
        same = now is not None and now.sha256 == bound.sha256
        return cls(
            bound.sha256, runs, same, None if same else explain(bound.canonical, now), bound.voided
        )

    @property
    def short(self) -> str | None:
        return None if self.sha256 is None else self.sha256[:12]

    @property
    def state(self) -> str:
        """One phrase: whether the approval still holds."""
        if self.sha256 is None:
            return "not bound"
        if self.matches is None:
            return "not checked here (no subject loaded)"
        return "still matches" if self.matches else f"NO LONGER MATCHES: {self.differs}"

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "runs": self.runs,
            "matches": self.matches,
            "differs": self.differs,
            "voided": self.voided,
        }


def _definition_part(definition: ActionDefinition) -> dict[str, Any]:
    data = definition.model_dump(mode="json", exclude=_NOT_RUN)
    for param in data.get("parameters", {}).values():
        if isinstance(param, dict):
            param.pop("description", None)
    return data


def _subject_kind(subject: Subject | None) -> str | None:
    if subject is None:
        return None
    cls = type(subject)
    return f"{cls.__module__}.{cls.__qualname__}"


def take(
    definition: ActionDefinition, subject: Subject | None, parameters: dict[str, Any]
) -> Fingerprint:
    """The fingerprint of running ``definition`` with ``parameters`` through ``subject``."""
    runs: str | None = None
    if subject is not None:
        try:
            runs = subject.preview(definition.name, dict(parameters))
        except Exception as exc:  # a plugin's bug: fingerprinted as such, never run unseen
            runs = f"(preview failed: {type(exc).__name__})"
    doc = {
        "v": VERSION,
        "action": definition.name,
        "subject": _subject_kind(subject),
        "definition": _definition_part(definition),
        "parameters": parameters,
        "runs": runs,
    }
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return Fingerprint(hashlib.sha256(canonical.encode()).hexdigest(), canonical)


def of_subject(
    subject: Subject | None, action_name: str, parameters: dict[str, Any]
) -> Fingerprint | None:
    """What ``subject`` would run now (None: no subject, or it does not offer the action),
    for a process that holds a subject but no registry (the dashboard's detail view)."""
    if subject is None:
        return None
    for definition in subject.action_definitions():
        if definition.name == action_name:
            return take(definition, subject, parameters)
    return None


class Fingerprinter:
    """Fingerprints through one registry, each kept per definition and parameters: the
    registry's definitions and subject do not change while it lives, and a preview renders
    neither secrets nor tickets, so the same inputs always give the same fingerprint."""

    def __init__(self, registry: ActionRegistry) -> None:
        self._registry = registry
        self._cache: dict[tuple[int, int, str], tuple[object, object, Fingerprint]] = {}

    def of(self, action_name: str, parameters: dict[str, Any]) -> Fingerprint | None:
        """None when the registry does not offer the action."""
        definition = self._registry.get_definition(action_name)
        if definition is None:
            return None
        subject = self._registry.subject
        key = (
            id(definition),
            id(subject),
            json.dumps(parameters, sort_keys=True, default=str),
        )
        hit = self._cache.get(key)
        # The objects themselves are kept and compared: an id is reused once freed.
        if hit is not None and hit[0] is definition and hit[1] is subject:
            return hit[2]
        fingerprint = take(definition, subject, parameters)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = (definition, subject, fingerprint)
        return fingerprint


def _quote(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…")


def _pair(old: object, new: object) -> str:
    """``'old' -> 'new'``, short: a long common start is elided so the difference shows."""
    a, b = (
        v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str) for v in (old, new)
    )
    same = 0
    while same < min(len(a), len(b)) and a[same] == b[same]:
        same += 1
    cut = same - 8 if same > 16 else 0
    if cut:
        a, b = "…" + a[cut:], "…" + b[cut:]
    if not isinstance(old, str) and not isinstance(new, str) and len(a) + len(b) < _SHOWN:
        return f"{a} -> {b}"  # numbers, booleans, null: as they are
    return f"{_quote(a)} -> {_quote(b)}"


def _argv(line: str) -> list[str] | None:
    try:
        return shlex.split(line)
    except ValueError:
        return None


def _runs_change(old: str, new: str) -> str:
    a, b = old.split("\n"), new.split("\n")
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else ""
        y = b[i] if i < len(b) else ""
        if x == y:
            continue
        if i == 0:
            xs, ys = _argv(x), _argv(y)
            if xs is not None and ys is not None and not x.split(" ", 1)[0].isupper():
                for j in range(max(len(xs), len(ys))):
                    u = xs[j] if j < len(xs) else None
                    v = ys[j] if j < len(ys) else None
                    if u != v:
                        if u is None:
                            return f"argv[{j}] added: {_quote(v)}"
                        if v is None:
                            return f"argv[{j}] removed: {_quote(u)}"
                        return f"argv[{j}] {_pair(u, v)}"
        return _pair(x, y)
    return "the rendered command changed"


def explain(old_canonical: str, new: Fingerprint | None) -> str:
    """One short line saying what differs between an approved fingerprint and now."""
    if new is None:
        return f"{CHANGED}: the action is no longer offered"
    try:
        old = json.loads(old_canonical)
    except ValueError:
        old = {}
    now = json.loads(new.canonical)
    if old.get("runs") != now.get("runs"):
        if isinstance(old.get("runs"), str) and isinstance(now.get("runs"), str):
            return f"{CHANGED}: {_runs_change(old['runs'], now['runs'])}"
        return f"{CHANGED}: the rendered command or request"
    for part in ("definition", "parameters", "subject", "action", "v"):
        a, b = old.get(part), now.get(part)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    return f"{CHANGED}: {part} {key} {_pair(a.get(key), b.get(key))}"
        return f"{CHANGED}: {part} {_pair(a, b)}"
    return CHANGED
