"""The action catalog as an agent reads it: JSON schemas derived from the typed action
definitions, and the command or request each action runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from operator_core.actions.definitions import ActionDefinition, ParamDef
    from operator_core.actions.registry import ActionRegistry

JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def param_schema(spec: ParamDef) -> dict[str, Any]:
    """One parameter as JSON schema. Patterns are anchored: the engine matches them whole."""
    schema: dict[str, Any] = {"type": JSON_TYPES.get(spec.type, "string")}
    notes = [spec.description] if spec.description else []
    if spec.type == "path":
        notes.append(
            "an absolute path" + (f" under {spec.under}" if spec.under is not None else "")
        )
    if spec.choices is not None:
        schema["enum"] = list(spec.choices)
    if spec.pattern is not None:
        schema["pattern"] = f"^(?:{spec.pattern})$"
    if spec.default is not None:
        schema["default"] = spec.default
    if notes:
        schema["description"] = "; ".join(notes)
    return schema


def parameters_schema(definition: ActionDefinition) -> dict[str, Any]:
    """The ``parameters`` object of one action, as JSON schema."""
    required = [
        name
        for name, spec in definition.parameters.items()
        if spec.required and spec.default is None
    ]
    schema: dict[str, Any] = {
        "type": "object",
        "title": definition.name,
        "properties": {n: param_schema(s) for n, s in definition.parameters.items()},
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _stand_in(name: str, spec: ParamDef, i: int) -> tuple[Any, str | None]:
    """A value the subject accepts for ``name`` and the text it renders as, which the
    preview then shows as ``<name>`` (None: shown as rendered)."""
    if spec.default is not None:
        return spec.default, None
    if spec.choices:
        return spec.choices[0], str(spec.choices[0])
    if spec.type == "path":
        return f"{(spec.under or '').rstrip('/')}/<{name}>", None
    if spec.type in ("int", "float"):
        number = 987650 + i  # unlikely to appear in a template by itself
        return number, str(number)
    if spec.type == "bool":
        return True, None
    return f"<{name}>", None


def placeholder_preview(registry: ActionRegistry, definition: ActionDefinition) -> str | None:
    """What the action runs, each parameter shown as ``<name>`` (or its default): the
    approver sees the real values in the proposal's own preview. None when the subject
    cannot render it."""
    subject = registry.subject
    if subject is None:
        return None
    values: dict[str, Any] = {}
    shown: dict[str, str] = {}
    for i, (name, spec) in enumerate(definition.parameters.items()):
        values[name], text = _stand_in(name, spec, i)
        if text is not None:
            shown[text] = f"<{name}>"
    try:
        rendered = subject.preview(definition.name, values)
    except Exception:  # a template that needs another kind of value: no preview
        return None
    if rendered is None or rendered.startswith("cannot preview"):
        return None
    for text, placeholder in shown.items():
        rendered = rendered.replace(text, placeholder)
    return rendered


def preview(registry: ActionRegistry, action_name: str, params: dict[str, Any]) -> str | None:
    """The exact command or request a proposal runs (secrets as placeholders)."""
    subject = registry.subject
    if subject is None or action_name not in registry:
        return None
    try:
        return subject.preview(action_name, params)
    except Exception:  # shown to the agent only; the runner renders it again itself
        return None


def describe(
    registry: ActionRegistry, definition: ActionDefinition, approval_mode: bool
) -> dict[str, Any]:
    """One catalog entry."""
    return {
        "name": definition.name,
        "description": definition.description,
        "parameters": {
            name: {
                "type": spec.type,
                "required": spec.required and spec.default is None,
                "description": spec.description,
                "default": spec.default,
                "choices": list(spec.choices) if spec.choices is not None else None,
                "pattern": spec.pattern,
                "under": spec.under,
            }
            for name, spec in definition.parameters.items()
        },
        "parameters_schema": parameters_schema(definition),
        "risk": definition.risk_level.value,
        "approval_required": definition.requires_approval or approval_mode,
        "timeout_seconds": definition.timeout_seconds,
        "runs": placeholder_preview(registry, definition),
        # An approved action past its budget waits for a slot: the agent should not retry.
        "execution_budget": definition.budget.describe() if definition.budget else None,
    }


def catalog(registry: ActionRegistry, approval_mode: bool) -> list[dict[str, Any]]:
    return [describe(registry, d, approval_mode) for d in registry.list_definitions()]


def any_parameters_schema(registry: ActionRegistry) -> dict[str, Any]:
    """propose_action's ``parameters``: one of the actions' parameter objects."""
    return {
        "type": "object",
        "description": "The action's parameters by name (see list_actions); values are typed "
        "as the action declares, strings are converted where they parse.",
        "anyOf": [parameters_schema(d) for d in registry.list_definitions()],
    }
