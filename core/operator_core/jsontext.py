"""JSON read and written through CPython's C accelerator ``_json``, without importing
``json``: that package compiles regular expressions at import, a fifth of a reading
command's start (docs/performance.md). The one module that touches ``_json``; everything
else calls ``loads`` and ``dumps`` here, which return what ``json.loads`` and ``json.dumps``
return for the options named (tests/core/test_jsontext.py holds them equal).
"""

from __future__ import annotations

from _json import encode_basestring, encode_basestring_ascii, make_encoder, make_scanner

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

WHITESPACE = " \t\n\r"
"""What JSON allows around a value (``json.decoder.WHITESPACE``)."""


class _Decoder:
    """The settings ``json.JSONDecoder()`` hands the C scanner: ``json.loads``' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}
    parse_constant = parse_constant.__getitem__
    memo: dict[str, str] = {}


_scan = make_scanner(_Decoder())


def loads(text: str) -> Any:
    """``json.loads(text)`` for a str; anything it would refuse goes to ``json.loads`` itself,
    so the error is the one it raises."""
    start = len(text) - len(text.lstrip(WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        end = -1
    if end < 0 or text[end:].strip(WHITESPACE) or text.startswith("\ufeff"):
        import json

        return json.loads(text)
    return value


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    """A dict key as ``json`` writes it (str, or a number, bool or None made text)."""
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return _float(key)
    if key is True or key is False or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _unknown(o: Any) -> Any:
    """``json.JSONEncoder.default``: a value JSON has no form for."""
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def dumps(
    value: Any,
    *,
    indent: int | None = None,
    sort_keys: bool = False,
    ensure_ascii: bool = True,
    default: Callable[[Any], Any] | None = None,
    separators: tuple[str, str] | None = None,
) -> str:
    """``json.dumps(value, ...)`` with these options (no circular check: a circular value
    raises RecursionError, where ``json`` raises ValueError)."""
    string = encode_basestring_ascii if ensure_ascii else encode_basestring
    default = default or _unknown
    if indent is None:
        item, colon = separators or (", ", ": ")
        encode = make_encoder(None, default, string, None, colon, item, sort_keys, False, True)
        return "".join(encode(value, 0))
    item, colon = separators or (",", ": ")
    out: list[str] = []
    _indented(value, 0, out, " " * indent, string, default, sort_keys, item, colon)
    return "".join(out)


def _indented(
    o: Any,
    level: int,
    out: list[str],
    step: str,
    string: Callable[[str], str],
    default: Callable[[Any], Any],
    sort_keys: bool,
    item: str,
    colon: str,
) -> None:
    """``json.encoder._make_iterencode`` with an indent, writing into ``out``."""
    if isinstance(o, str):
        out.append(string(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, list | tuple | dict):
        pairs = (sorted(o.items()) if sort_keys else o.items()) if isinstance(o, dict) else None
        if not o:
            out.append("{}" if pairs is not None else "[]")
            return
        inner = "\n" + step * (level + 1)
        out.append("{" if pairs is not None else "[")
        first = True
        for entry in pairs if pairs is not None else o:
            out.append(inner if first else item + inner)
            first = False
            if pairs is not None:
                out.append(string(_key(entry[0])) + colon)
                entry = entry[1]
            _indented(entry, level + 1, out, step, string, default, sort_keys, item, colon)
        out.append("\n" + step * level + ("}" if pairs is not None else "]"))
    else:
        _indented(default(o), level, out, step, string, default, sort_keys, item, colon)
