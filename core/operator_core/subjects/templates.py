"""The small template language of runbook files.

``{name}`` is a parameter, ``{secret:NAME}`` a secret, ``{ticket.FIELD}`` a field of the
proposal's ticket (id, title, summary, severity, status); ``{{`` and ``}}`` are literal
braces. Templates are parsed when the file loads, so a typo fails at start-up, and rendered
into values, never through a shell or a JSON string, so a parameter cannot escape its slot.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from operator_core.errors import ConfigError
from operator_core.model.types import Ticket
from operator_core.secrets import check_name

TICKET_FIELDS = ("id", "title", "summary", "severity", "status")
# How deep a webhook body may nest (tables and arrays); real bodies use a handful of levels.
MAX_JSON_DEPTH = 32
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class TemplateError(ValueError):
    """A template does not parse or refers to something unknown."""


@dataclass(frozen=True)
class Ref:
    kind: str  # "param", "secret" or "ticket"
    name: str

    @property
    def placeholder(self) -> str:
        if self.kind == "param":
            return f"{{{self.name}}}"
        if self.kind == "secret":
            return f"{{secret:{self.name}}}"
        return f"{{ticket.{self.name}}}"


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple[str | Ref, ...]

    @property
    def refs(self) -> list[Ref]:
        return [p for p in self.parts if isinstance(p, Ref)]

    @property
    def secrets(self) -> list[str]:
        return [r.name for r in self.refs if r.kind == "secret"]

    @property
    def single_ref(self) -> Ref | None:
        """The reference when the template is exactly one ``{...}`` and nothing else."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Ref):
            return self.parts[0]
        return None


def parse(source: str, params: Iterable[str]) -> Template:
    """Parse ``source``; every ``{name}`` must be one of ``params``."""
    known = set(params)
    parts: list[str | Ref] = []
    literal: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(source):
        literal.append(source[pos : m.start()])
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
            continue
        if token in ("{", "}"):
            raise TemplateError(
                f"unmatched {token!r} in {source!r} (write {token * 2} for a literal brace)"
            )
        ref = _ref(m.group(1).strip(), known)
        if "".join(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(ref)
    literal.append(source[pos:])
    if "".join(literal):
        parts.append("".join(literal))
    return Template(source, tuple(parts))


def _ref(text: str, known: set[str]) -> Ref:
    if text.startswith("secret:"):
        name = text.removeprefix("secret:").strip()
        try:
            check_name(name)
        except ConfigError as exc:
            raise TemplateError(f"in {{{text}}}: {exc}") from None
        return Ref("secret", name)
    if text.startswith("ticket."):
        name = text.removeprefix("ticket.")
        if name not in TICKET_FIELDS:
            raise TemplateError(
                f"unknown ticket field in {{{text}}} (use {', '.join(TICKET_FIELDS)})"
            )
        return Ref("ticket", name)
    if text not in known:
        names = ", ".join(sorted(known)) or "none declared"
        raise TemplateError(f"{{{text}}} is not a parameter of this action (parameters: {names})")
    return Ref("param", text)


def as_text(value: Any) -> str:
    """How a typed value reads inside a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class RenderContext:
    """What templates are rendered with. ``secret`` is None for a preview: secrets (and a
    missing ticket) then render as their placeholders."""

    params: dict[str, Any]
    ticket: Ticket | None = None
    secret: Callable[[str], str] | None = None
    preview: bool = field(init=False)

    def __post_init__(self) -> None:
        self.preview = self.secret is None

    def value(self, ref: Ref) -> Any:
        if ref.kind == "param":
            return self.params.get(ref.name)
        if ref.kind == "secret":
            return ref.placeholder if self.secret is None else self.secret(ref.name)
        if self.ticket is None:
            return ref.placeholder if self.preview else None
        return getattr(self.ticket, ref.name)


def render(
    template: Template, ctx: RenderContext, encode: Callable[[str], str] | None = None
) -> str:
    """Render to a string. ``encode`` is applied to parameter and ticket values (e.g. URL
    quoting), not to literals or secrets, which come from the runbook's author."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        text = as_text(ctx.value(part))
        if (
            encode is not None
            and part.kind != "secret"
            and not (ctx.preview and part.kind == "ticket" and ctx.ticket is None)
        ):
            text = encode(text)
        out.append(text)
    return "".join(out)


def render_value(template: Template, ctx: RenderContext) -> Any:
    """Render a JSON leaf: exactly ``{name}`` keeps the value's type (int, bool...)."""
    ref = template.single_ref
    if ref is not None and ref.kind != "secret":
        return ctx.value(ref)
    return render(template, ctx)


def parse_json(data: Any, params: Iterable[str], where: str = "body", depth: int = 0) -> Any:
    """Parse every string of a JSON-like structure as a template. Raises TemplateError with
    the path of the bad string, or when the structure nests deeper than ``MAX_JSON_DEPTH``
    (every later walk of it recurses, so a body thousands deep would crash each one)."""
    names = list(params)
    if isinstance(data, str):
        try:
            return parse(data, names)
        except TemplateError as exc:
            raise TemplateError(f"{where}: {exc}") from exc
    if isinstance(data, (dict, list)) and depth >= MAX_JSON_DEPTH:
        raise TemplateError(f"nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(data, dict):
        return {k: parse_json(v, names, f"{where}.{k}", depth + 1) for k, v in data.items()}
    if isinstance(data, list):
        return [parse_json(v, names, f"{where}[{i}]", depth + 1) for i, v in enumerate(data)]
    if data is None or isinstance(data, (bool, int, float)):
        return data
    raise TemplateError(f"{where}: {type(data).__name__} values cannot be sent as JSON")


def render_json(data: Any, ctx: RenderContext) -> Any:
    if isinstance(data, Template):
        return render_value(data, ctx)
    if isinstance(data, dict):
        return {k: render_json(v, ctx) for k, v in data.items()}
    if isinstance(data, list):
        return [render_json(v, ctx) for v in data]
    return data


def json_secrets(data: Any) -> list[str]:
    if isinstance(data, Template):
        return data.secrets
    if isinstance(data, dict):
        return [s for v in data.values() for s in json_secrets(v)]
    if isinstance(data, list):
        return [s for v in data for s in json_secrets(v)]
    return []
