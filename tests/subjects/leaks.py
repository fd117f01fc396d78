"""What a secret looks like once it leaked, for tests that search every byte Operator
wrote: its encodings (written out here, independently of the redactor) and every run of 6
characters of them."""

from __future__ import annotations

import base64
import json
import re
import secrets
import urllib.parse
from collections.abc import Iterable

# Characters that each encoding treats differently (the issue's own example).
NASTY = 'a+b/c=d&e f%g"h\\'
PIECE = 6
# No hex digits: a piece of the secret must not turn up by chance in the audit log's
# hashes or in timestamps.
_ALPHABET = "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ_-"
_HEX = re.compile(rb"[0-9a-fA-F]+")


def nasty_secret(extra: str = "") -> str:
    """A long random secret (about 200 bits) holding every awkward character."""

    def part() -> str:
        return "".join(secrets.choice(_ALPHABET) for _ in range(40))

    return f"{part()}{NASTY}{extra}{part()}"


def _lower_hex(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def encodings(value: str, observed: Iterable[str] = ()) -> set[str]:
    """``value`` as is, percent-encoded (urllib's ways and each form seen on the wire),
    base64'd, and each of those JSON-escaped once and twice. (Not hex: pieces of it
    would be found by chance in the audit log's hashes.)"""
    raw = value.encode()
    percent = {
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote(value),
        urllib.parse.quote_plus(value),
        *observed,
    }
    percent |= {_lower_hex(p) for p in percent}
    b64 = {
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    }
    base = {value, *percent, *b64}
    once = {json.dumps(b, ensure_ascii=a)[1:-1] for b in base for a in (True, False)}
    twice = {json.dumps(o, ensure_ascii=a)[1:-1] for o in once for a in (True, False)}
    return {f for f in base | once | twice if len(f) >= PIECE}


def pieces(forms: Iterable[str]) -> set[bytes]:
    """Every run of PIECE characters of every form, as bytes (UTF-8); but not those made of
    hex digits only (a few of the base64 forms' are), which the audit log's hashes would
    hold by chance."""
    out: set[bytes] = set()
    for form in forms:
        out |= {form[i : i + PIECE].encode() for i in range(len(form) - PIECE + 1)}
    return {p for p in out if not _HEX.fullmatch(p)}


def find(blob: bytes, needles: set[bytes]) -> list[bytes]:
    """The needles found in ``blob`` (empty when clean)."""
    return sorted(n for n in needles if n in blob)
