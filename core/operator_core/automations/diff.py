"""Comparing definitions: a hash that decides whether ``apply`` makes a version, and a diff.

Both work on the canonical form: the stored JSON with sorted keys, presentation keys
(node positions) already dropped by parsing, and the editor's ``id`` and informational
``version`` left out, since neither changes what the automation does.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from operator_core.automations.definition import AutomationDefinition, parse_definition
from operator_core.safe_text import visible

_NOT_COMPARED = ("id", "version")


def _definition(d: AutomationDefinition | Mapping[str, Any]) -> AutomationDefinition:
    return d if isinstance(d, AutomationDefinition) else parse_definition(dict(d), "stored")


def canonical(d: AutomationDefinition | Mapping[str, Any]) -> dict[str, Any]:
    data = _definition(d).to_json_dict()
    for key in _NOT_COMPARED:
        data.pop(key, None)
    return data


def canonical_json(d: AutomationDefinition | Mapping[str, Any]) -> str:
    """Indented, key-sorted JSON: the text that ``diff`` compares line by line."""
    return json.dumps(canonical(d), sort_keys=True, indent=2, ensure_ascii=False)


def definition_hash(d: AutomationDefinition | Mapping[str, Any]) -> str:
    """Equal for definitions that do the same thing, however the file was laid out."""
    text = json.dumps(canonical(d), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def diff(
    old: AutomationDefinition | Mapping[str, Any],
    new: AutomationDefinition | Mapping[str, Any],
    old_label: str = "old",
    new_label: str = "new",
) -> str:
    """A unified diff of the canonical forms; empty when they are the same. Every line is
    made visible, so text in a definition cannot drive the terminal that shows it."""
    lines = difflib.unified_diff(
        canonical_json(old).splitlines(),
        canonical_json(new).splitlines(),
        fromfile=old_label,
        tofile=new_label,
        lineterm="",
    )
    return "\n".join(visible(line) for line in lines)
