"""An automation's definition in seed 004's ``WorkflowDefinition`` shape, read from JSON or TOML.

The keys are the seed's (camelCase, React Flow nodes and edges); presentation keys such as a
node's ``position`` are accepted and dropped. Parsing checks the shape only; whether the
actions exist and the graph is sound is ``validate``'s job, so both report one line naming
the file and the node.
"""

from __future__ import annotations

import contextlib
import json
import re
import tomllib
from collections import deque
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticError

from operator_core.actions.limits import MAX_AHEAD_DAYS, MAX_DELAY_SECONDS, MAX_RETRIES
from operator_core.errors import ConfigError
from operator_core.safe_text import visible

MAX_FILE_BYTES = 1_000_000
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
DEFAULT_TIMEOUT = "15min"
# Far beyond a graph a person draws; bounds the work of validating and walking one.
MAX_NODES = 500
MAX_EDGES = 2000

TRIGGER_TYPES = (
    "incident_created",
    "ticket_created",
    "state_changed",
    "escalation",
    "manual",
    "age",
)
TRIGGER_ALIASES = {"ticket_created": "incident_created"}


class DefinitionError(ConfigError):
    """A definition file cannot be used; the message is one line naming file and node."""


_UNITS = {
    "ms": 0.001,
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as the seed's ``5min``, or ``90s``, ``2h``, ``1h30m``."""
    spec = text.strip().lower()
    total, pos = 0.0, 0
    while pos < len(spec):
        m = _PART.match(spec, pos)
        if m is None or m.group(2) not in _UNITS:
            raise ValueError(f'"{text}" is not a duration (write e.g. "5min", "90s" or "2h")')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not spec:
        raise ValueError("a duration cannot be empty")
    if total <= 0:
        raise ValueError(f'a duration must be more than zero, got "{text}"')
    if total > MAX_DELAY_SECONDS:
        raise ValueError(f"a duration cannot be more than {MAX_AHEAD_DAYS} days (ten years)")
    return total


def _scalar_text(value: Any) -> Any:
    """A match value written as a TOML or JSON number or boolean reads as its text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_scalar_text)]

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)
# Nodes and edges come from a graph editor that adds its own keys (position, width,
# selected...); those are dropped, while everything inside ``data`` is checked.
_LOOSE = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class RetrySettings(BaseModel):
    """The seed's per-node RetryConfig: total attempts, exponential backoff from a delay."""

    model_config = _STRICT

    attempts: int = Field(default=1, ge=1, le=MAX_RETRIES + 1, description="Attempts in all")
    backoff: Literal["exponential"] = Field(default="exponential", description="Backoff shape")
    initial_delay_ms: int = Field(
        default=1000,
        ge=0,
        le=int(MAX_DELAY_SECONDS * 1000),
        alias="initialDelayMs",
        description="Wait before the first retry",
    )


class TriggerData(BaseModel):
    model_config = _LOOSE

    name: str = Field(default="", description="Display name")


class ActionData(BaseModel):
    """An action the subject declares; ``actionType``/``config`` are the seed's names."""

    model_config = _STRICT

    action: str = Field(
        ...,
        min_length=1,
        validation_alias=AliasChoices("action", "actionType"),
        serialization_alias="action",
        description="Registry action name",
    )
    name: str = Field(default="", description="Display name")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("parameters", "params", "config"),
        serialization_alias="parameters",
        description="Action parameters; strings may hold placeholders",
    )
    retry: RetrySettings | None = Field(default=None, description="Overrides the action's")
    continue_on_error: bool = Field(
        default=False, alias="continueOnError", description="A failure does not fail the run"
    )
    reason: str = Field(default="", description="Reason the proposal carries")


class ConditionData(BaseModel):
    model_config = _STRICT

    field: str = Field(..., min_length=1, description="Ticket field, e.g. status")
    operator: Literal["=", "=="] = Field(default="=", description="Equality only (seed rule)")
    value: Text = Field(..., description="Value the field must equal")
    name: str = Field(default="", description="Display name")


class DelayData(BaseModel):
    model_config = _STRICT

    duration_minutes: float = Field(
        ..., alias="durationMinutes", allow_inf_nan=False, description="Minutes to wait"
    )
    name: str = Field(default="", description="Display name")


class TriggerNode(BaseModel):
    model_config = _LOOSE
    id: str = Field(..., min_length=1)
    type: Literal["trigger"]
    data: TriggerData = Field(default_factory=TriggerData)


class ActionNode(BaseModel):
    model_config = _LOOSE
    id: str = Field(..., min_length=1)
    type: Literal["action"]
    data: ActionData


class ConditionNode(BaseModel):
    model_config = _LOOSE
    id: str = Field(..., min_length=1)
    type: Literal["condition"]
    data: ConditionData


class DelayNode(BaseModel):
    model_config = _LOOSE
    id: str = Field(..., min_length=1)
    type: Literal["delay"]
    data: DelayData


Node = Annotated[TriggerNode | ActionNode | ConditionNode | DelayNode, Field(discriminator="type")]


def _handle(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class Edge(BaseModel):
    model_config = _LOOSE

    id: str = Field(default="", description="Filled as SOURCE->TARGET when omitted")
    source: str = Field(..., min_length=1)
    target: str = Field(..., min_length=1)
    source_handle: Annotated[Literal["true", "false"] | None, BeforeValidator(_handle)] = Field(
        default=None, alias="sourceHandle", description="Branch of a condition node"
    )

    @model_validator(mode="after")
    def _default_id(self) -> Edge:
        if not self.id:
            object.__setattr__(self, "id", f"{self.source}->{self.target}")
        return self


class TriggerCondition(BaseModel):
    model_config = _STRICT

    field: str = Field(..., min_length=1, description="severity/priority, service, team...")
    value: Text = Field(..., description="Value the field must equal")


class StateTransition(BaseModel):
    model_config = _STRICT

    from_: str | None = Field(default=None, alias="from", description="Status before")
    to: str | None = Field(default=None, description="Status after")


class TriggerConfig(BaseModel):
    model_config = _STRICT

    type: Literal[
        "incident_created", "ticket_created", "state_changed", "escalation", "manual", "age"
    ]
    conditions: tuple[TriggerCondition, ...] = Field(default=(), description="All must hold")
    age_threshold_minutes: float | None = Field(
        default=None,
        alias="ageThresholdMinutes",
        gt=0,
        le=MAX_DELAY_SECONDS / 60,
        allow_inf_nan=False,
    )
    state_transition: StateTransition | None = Field(default=None, alias="stateTransition")

    @model_validator(mode="after")
    def _type_fields(self) -> TriggerConfig:
        if self.type == "age" and self.age_threshold_minutes is None:
            raise ValueError("an age trigger needs ageThresholdMinutes")
        if self.type != "age" and self.age_threshold_minutes is not None:
            raise ValueError("ageThresholdMinutes is only for an age trigger")
        if self.type != "state_changed" and self.state_transition is not None:
            raise ValueError("stateTransition is only for a state_changed trigger")
        return self

    @property
    def event(self) -> str:
        """The trigger type with the seed's aliases resolved."""
        return TRIGGER_ALIASES.get(self.type, self.type)


class Settings(BaseModel):
    model_config = _STRICT

    timeout: str = Field(default=DEFAULT_TIMEOUT, description='"1min", "5min", "15min", "2h"...')
    enabled: bool = Field(default=False, description="Events start executions")

    @model_validator(mode="after")
    def _timeout_parses(self) -> Settings:
        parse_duration(self.timeout)
        return self

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)


class Scope(BaseModel):
    model_config = _STRICT

    type: Literal["global", "team"] = "global"
    team: str | None = Field(default=None, min_length=1, description="Only this team's tickets")

    @model_validator(mode="before")
    @classmethod
    def _from_word(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _team_named(self) -> Scope:
        if self.type == "team" and not self.team:
            raise ValueError('a team scope needs "team" (the team name)')
        if self.type == "global" and self.team is not None:
            raise ValueError('a global scope has no "team" (use type "team")')
        return self


class AutomationDefinition(BaseModel):
    """Seed 004's WorkflowDefinition plus the automation's scope."""

    model_config = _STRICT

    id: str | None = Field(default=None, description="Editor's id; not used for identity")
    name: str = Field(..., pattern=f"^{NAME_PATTERN}$", description="Unique automation name")
    description: str = Field(..., description="What it is for (the seed requires one)")
    version: int = Field(default=1, ge=1, description="Informational; storage numbers versions")
    nodes: tuple[Node, ...] = Field(..., min_length=1, max_length=MAX_NODES)
    edges: tuple[Edge, ...] = Field(default=(), max_length=MAX_EDGES)
    trigger: TriggerConfig
    settings: Settings = Field(default_factory=Settings)
    scope: Scope = Field(default_factory=Scope)

    @cached_property
    def _index(self) -> tuple[dict[str, Any], dict[str, list[Edge]], dict[str, list[Edge]]]:
        """Nodes by id (the first of a duplicated id), edges by source and by target."""
        nodes: dict[str, Any] = {}
        out: dict[str, list[Edge]] = {}
        into: dict[str, list[Edge]] = {}
        for n in self.nodes:
            nodes.setdefault(n.id, n)
        for e in self.edges:
            out.setdefault(e.source, []).append(e)
            into.setdefault(e.target, []).append(e)
        return nodes, out, into

    @cached_property
    def order(self) -> tuple[str, ...]:
        """Node ids, each after all its predecessors, ties in file order. On a graph with a
        cycle the nodes on or after it are missing (validation refuses such a graph)."""
        indegree = {n.id: 0 for n in self.nodes}
        for e in self.edges:
            if e.target in indegree:
                indegree[e.target] += 1
        order: list[str] = []
        ready = deque(n.id for n in self.nodes if indegree[n.id] == 0)
        while ready:
            node_id = ready.popleft()
            order.append(node_id)
            for e in self._index[1].get(node_id, ()):
                if e.target in indegree:
                    indegree[e.target] -= 1
                    if indegree[e.target] == 0:
                        ready.append(e.target)
        return tuple(order)

    def node(self, node_id: str) -> TriggerNode | ActionNode | ConditionNode | DelayNode:
        found: TriggerNode | ActionNode | ConditionNode | DelayNode = self._index[0][node_id]
        return found

    def outgoing(self, node_id: str) -> list[Edge]:
        return list(self._index[1].get(node_id, ()))

    def incoming(self, node_id: str) -> list[Edge]:
        return list(self._index[2].get(node_id, ()))

    def to_json_dict(self) -> dict[str, Any]:
        """The definition as stored: the seed's keys, positions dropped, defaults filled."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


WorkflowDefinition = AutomationDefinition  # the seed's name


def _where(loc: tuple[Any, ...], raw: Any) -> str:
    """``node "x": data.field`` for a location inside a node or edge, else the dotted path."""
    if len(loc) >= 2 and loc[0] in ("nodes", "edges") and isinstance(loc[1], int):
        kind = "node" if loc[0] == "nodes" else "edge"
        item: Any = None
        with contextlib.suppress(KeyError, IndexError, TypeError):
            item = raw[loc[0]][loc[1]]
        ident = item.get("id") if isinstance(item, dict) else None
        label = f'{kind} "{ident}"' if isinstance(ident, str) and ident else f"{kind} #{loc[1] + 1}"
        rest = [str(p) for p in loc[2:] if p not in ("trigger", "action", "condition", "delay")]
        return label + (": " + ".".join(rest) if rest else "")
    return ".".join(str(p) for p in loc) or "definition"


def _one_line(exc: PydanticError, raw: Any) -> str:
    first = exc.errors()[0]
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{_where(tuple(first.get('loc', ())), raw)}: {msg}"


def parse_definition(data: Any, source: str = "definition") -> AutomationDefinition:
    """A definition from parsed JSON or TOML; DefinitionError names ``source`` and the node."""
    if not isinstance(data, dict):
        raise DefinitionError(
            f"{source}: a definition is a table/object, got {type(data).__name__}"
        )
    try:
        return AutomationDefinition.model_validate(data)
    except PydanticError as exc:
        raise DefinitionError(visible(f"{source}: {_one_line(exc, data)}")) from None


def load_definition(path: str | Path) -> AutomationDefinition:
    """Read a ``.json`` or ``.toml`` definition file."""
    p = Path(path)
    source = str(path)
    suffix = p.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise DefinitionError(f"{source}: a definition file ends in .json or .toml")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DefinitionError(f"{source}: larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DefinitionError(f"{source}: not UTF-8 text") from None
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            f"{source}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise DefinitionError(f"{source}: nested too deeply") from None
    return parse_definition(data, source)
