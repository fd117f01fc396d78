"""Storing automation definitions: new versions, enable and disable, each audited.

The executor stores what it is given as checked: checking a definition against the registry
(``automations.validate``) and hashing it is the caller's part (cli/automations.py), since
the automations package builds on this one (its validation reads the registry). History is
append-only: a rollback appends a copy of the old version.
"""

from __future__ import annotations

from dataclasses import replace

from operator_core.actions import limits
from operator_core.actions.executor_base import ExecutorBase
from operator_core.db import automations as automation_db
from operator_core.db.automations import (
    Automation,
    AutomationNotFoundError,
    AutomationVersion,
    NewVersion,
    Stored,
)
from operator_core.errors import ValidationError
from operator_core.identity import actor_text

__all__ = ["AutomationNotFoundError", "Automating", "check_note"]

MAX_NOTE_CHARS = 1000


def check_note(note: str) -> str:
    """A version's note: text of at most MAX_NOTE_CHARS."""
    text = limits.text(note, "the note", "note").strip()
    if len(text) > MAX_NOTE_CHARS:
        raise ValidationError(f"a note is at most {MAX_NOTE_CHARS} characters", "note")
    return text


class Automating(ExecutorBase):
    """Automation definitions and their versions, as the CLI and the dashboard change them."""

    async def store_automation(self, name: str, new: NewVersion, actor: str) -> Stored:
        """Create automation ``name`` at version 1, or append version n+1 when ``new``
        differs from the current version (by hash). ``new`` must have been checked against
        this executor's registry (``automations.validate.check_definition``)."""
        new = replace(new, note=check_note(new.note))
        return await self.db.write(
            automation_db.store,
            name,
            new,
            actor_text(actor, self.identity),
            self.identity,
            self.db.clock.now_text(),
        )

    async def set_automation_enabled(self, name: str, enabled: bool, actor: str) -> bool:
        """Turn an automation on or off; False when it already was."""
        return await self.db.write(
            automation_db.set_enabled,
            name,
            enabled,
            actor_text(actor, self.identity),
            self.db.clock.now_text(),
        )

    async def require_automation(self, name: str) -> Automation:
        return await self.db.read(automation_db.require, name)

    async def list_automations(self) -> list[Automation]:
        return await self.db.read(automation_db.list_all)

    async def automation_version(self, name: str, number: int) -> AutomationVersion:
        return await self.db.read(automation_db.version, name, number)

    async def automation_history(self, name: str) -> list[AutomationVersion]:
        return await self.db.read(automation_db.history, name)
