"""The registry of typed actions a subject offers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from operator_core.actions.definitions import (
    ActionDefinition,
    ParamDef,
    RiskLevel,
    confine_paths,
    normalise_path,
    validate_action_params,
)
from operator_core.errors import ConfigError, UnknownActionError

if TYPE_CHECKING:
    from operator_core.actions.subject import Subject

# Where a subject's author imports them from (see the README's "Writing a subject").
__all__ = [
    "ActionDefinition",
    "ActionRegistry",
    "ParamDef",
    "RiskLevel",
    "confine_paths",
    "normalise_path",
    "validate_action_params",
]


def _first_error(exc: ValueError) -> str:
    """One line for a pydantic error (its own text spans several lines)."""
    errors = getattr(exc, "errors", None)
    if callable(errors) and errors():
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{getattr(exc, 'title', '')}.{where}: {first.get('msg', '')}"
    return str(exc)


class ActionRegistry:
    """Holds the action definitions of a subject."""

    def __init__(
        self,
        definitions: Iterable[ActionDefinition] = (),
        subject: Subject | None = None,
        *,
        lazy: bool = False,
    ) -> None:
        """With ``lazy``, the subject's definitions are read at their first use (or
        ``load()``), not here: the dashboard draws its first frame before paying for
        building the definition models."""
        self.subject = subject
        self._defs: dict[str, ActionDefinition] = {}
        self._pending: Subject | None = None
        self._budgets: dict[str, tuple[int, float]] | None = None
        for d in definitions:
            self.register(d)
        if subject is not None:
            self._pending = subject
            if not lazy:
                self.load()

    @classmethod
    def from_subject(cls, subject: Subject, *, lazy: bool = False) -> ActionRegistry:
        return cls(subject=subject, lazy=lazy)

    def load(self) -> None:
        """Read the subject's definitions now, if not yet (an error in them is raised here)."""
        subject, self._pending = self._pending, None
        if subject is not None:
            try:
                for d in subject.action_definitions():
                    self.register(d)
            except ValueError as exc:  # pydantic's ValidationError is one
                raise ConfigError(
                    f"subject {getattr(subject, 'name', '?')!r} declares a bad action: "
                    f"{_first_error(exc)}"
                ) from None

    @property
    def _loaded(self) -> dict[str, ActionDefinition]:
        if self._pending is not None:
            self.load()
        return self._defs

    def register(self, definition: ActionDefinition) -> None:
        if definition.name in self._loaded:
            raise ValueError(f"action '{definition.name}' is defined twice")
        self._defs[definition.name] = definition
        self._budgets = None

    def budgets(self) -> dict[str, tuple[int, float]]:
        """Each action with an execution budget: ``{name: (runs, per_seconds)}`` (what
        every claim of the runner checks, so worked out once)."""
        if self._budgets is None or self._pending is not None:
            self._budgets = {
                d.name: (d.budget.runs, d.budget.per_seconds)
                for d in self._loaded.values()
                if d.budget is not None
            }
        return self._budgets

    def get_definition(self, name: str) -> ActionDefinition | None:
        return self._loaded.get(name)

    def require(self, name: str) -> ActionDefinition:
        definition = self._loaded.get(name)
        if definition is None:
            known = ", ".join(sorted(self._defs)) or "none"
            raise UnknownActionError(f"unknown action '{name}' (available: {known})")
        return definition

    def list_action_names(self) -> list[str]:
        return sorted(self._loaded)

    def list_definitions(self) -> list[ActionDefinition]:
        return [self._loaded[n] for n in sorted(self._defs)]

    def __contains__(self, name: object) -> bool:
        return name in self._loaded
