"""Text from proposals, agents and commands, made safe to show a person.

A parameter, reason, actor or command output is written by someone else: shown raw, its
escape sequences would drive the approver's terminal (colours, titles, cursor moves), its
newlines would forge lines of a preview, and bidi overrides would reorder what is read.
``visible`` writes every such character as a visible escape (``\\n``, ``\\x1b``,
``\\u202e``), so each value stays on its own line and reads as what it is. Every printer of
the CLI goes through here; the dashboard's cells too (``operator_tui.format``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (docs/performance.md)
if TYPE_CHECKING:
    import re
    from typing import Any

# Unicode categories Cc (C0, DEL, C1), Cf (format: bidi overrides and isolates, zero-width
# characters, soft hyphen...), Zl and Zp (line and paragraph separators) and Cs (lone
# surrogates, which is how Python keeps bytes that are not UTF-8). Listed rather than derived
# from ``unicodedata`` at import (that costs a CLI start 100 ms); a test checks the list
# against the running Python's tables. Compiled at first need: most text is printable
# (``str.isprintable`` is false for all of these), and a CLI start does not pay for it.
_UNSAFE = (
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]"
)


_PATTERN: list[re.Pattern[str]] = []


def _unsafe() -> re.Pattern[str]:
    """The pattern, compiled at first need (``re`` too: a reading command's start has none)."""
    if not _PATTERN:
        import re

        _PATTERN.append(re.compile(_UNSAFE))
    return _PATTERN[0]


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    cp = ord(ch)
    if 0xDC80 <= cp <= 0xDCFF:
        return f"\\x{cp - 0xDC00:02x}"  # a byte that was not UTF-8 (surrogateescape)
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def visible(value: object) -> str:
    """``value`` as one line of plain text: control, format and separator characters are
    written as escapes. Text that needs none comes back as it was."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return _unsafe().sub(_escape, text)


def shown(value: Any) -> str:
    """A short, one-line, visible ``repr`` of any value, for messages that quote input:
    bounded in length and depth (a list nested thousands deep does not recurse)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel = 3
    short.maxstring = 60
    short.maxother = 60
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 6
    try:
        return visible(short.repr(value))
    except Exception:  # e.g. an int too long to print (Python refuses past 4,300 digits)
        return f"<{type(value).__name__}>"


def has_surrogates(text: str) -> bool:
    """``text`` holds lone surrogates: bytes that were not UTF-8, or a broken string. They
    cannot be stored (SQLite and JSON need real Unicode), so inputs holding them are refused."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def json_visible(text: str) -> str:
    """JSON written with ``ensure_ascii=False`` (so accents and CJK read as themselves), with
    each character ``visible`` would escape written as a JSON ``\\u`` escape instead. Such a
    character can only be inside a string (``json.dumps`` escapes the C0 controls there), so
    a raw newline left is the layout's."""
    if text.isascii() and "\x7f" not in text:
        return text
    if text.replace("\n", "").isprintable():
        return text  # none of those characters is printable: accents and CJK need no pattern
    return _unsafe().sub(_json_escape, text)


def _json_escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch == "\n":
        return ch
    cp = ord(ch)
    if cp > 0xFFFF:  # JSON spells a character beyond the BMP as a surrogate pair
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"
    return f"\\u{cp:04x}"
