"""A subject whose actions misbehave in the ways a plugin can: results the database cannot
store, errors that cannot be printed, exceptions that are not Exceptions. Also counts its
executions in a file, so a test sees whether an action ran once or twice. Importable as
``tests.support.odd_subject:OddSubject`` by runner subprocesses."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from operator_core.actions.registry import ActionDefinition, ParamDef
from operator_core.errors import ActionFailed
from operator_core.subjects.base import BaseSubject, ExecutionContext


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


def _circular() -> dict[str, Any]:
    data: dict[str, Any] = {}
    data["self"] = data
    return data


# What each odd action does; every one fails its action and nothing else.
ODD = {
    "circular_result": lambda: _circular(),
    "huge_int_result": lambda: {"n": 10**5000},  # json refuses ints of over 4300 digits
    "tuple_key_result": lambda: {(1, 2): "x"},
    "surrogate_error": lambda: (_ for _ in ()).throw(ActionFailed("bad \udcff bytes")),
    "unprintable_error": lambda: (_ for _ in ()).throw(Unprintable()),
    "system_exit": lambda: (_ for _ in ()).throw(SystemExit(3)),
    "keyboard_interrupt": lambda: (_ for _ in ()).throw(KeyboardInterrupt()),
}


class OddSubject(BaseSubject):
    __test__ = False
    name = "odd"

    def action_definitions(self) -> list[ActionDefinition]:
        text = ParamDef(type="str", required=False, default="")
        defs = [
            ActionDefinition(name="ok", description="succeeds"),
            ActionDefinition(
                name="echo",
                description="returns its parameters",
                parameters={
                    "text": text,
                    "n": ParamDef(type="int", required=False, default=0),
                    "x": ParamDef(type="float", required=False, default=0.0),
                    "flag": ParamDef(type="bool", required=False, default=False),
                },
            ),
            ActionDefinition(
                name="count",
                description="appends a line to $ODD_COUNT_FILE, then waits for $ODD_GATE_FILE "
                "to exist (if set), and returns a result of a few kilobytes",
                timeout_seconds=120,
            ),
            ActionDefinition(name="fail", description="fails (retryable)"),
        ]
        defs += [ActionDefinition(name=name, description="misbehaves") for name in ODD]
        return defs

    async def execute(
        self, action_name: str, parameters: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any] | None:
        if action_name == "ok":
            return None
        if action_name == "echo":
            return {"echo": parameters, "attempt": context.attempt}
        if action_name == "count":
            with Path(os.environ["ODD_COUNT_FILE"]).open("a") as f:
                f.write(f"{context.proposal.id}\n")
            gate = os.environ.get("ODD_GATE_FILE")
            while gate and not Path(gate).exists():  # noqa: ASYNC110 (another process opens it)
                await asyncio.sleep(0.02)
            return {"tail": "x" * 6000}  # several pages: recording it needs new pages
        if action_name == "fail":
            raise ActionFailed("always")
        return ODD[action_name]()  # type: ignore[no-any-return]
