"""Redaction: the forms a secret value takes on its way through a request, a program or a
server's echo, and the masking of every one of them, whole or in part.

A secret is hidden in each form it can take in text Operator keeps: as is; percent-encoded
the way urllib (``quote``, ``quote_plus``, upper- or lower-case hex) and httpx (per URL
component, as it goes on the wire) encode it; JSON-escaped (once or twice: a JSON body
echoed inside a JSON answer), with ``\\/`` and HTML escapes; base64 and URL-safe base64,
at each of the three alignments a value can have inside a longer base64 text (so
``base64("user:" + secret)`` is caught without knowing the user); hex. Beyond whole forms:

- any run of 6 or more characters (``FRAGMENT``) of a form, anywhere in the text (not of
  the hex form, nor a run of hex digits from another encoding: checksums would match);
- at an edge where the text was cut (the start of a tail, the end of a head), any
  prefix or suffix of 4 or more characters (``CUT_FRAGMENT``): a cut is known to have
  happened there, so a short piece of a secret is likelier than chance.

Whole forms become the secret's placeholder (``{secret:NAME}``); fragments become ``***``.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"
FRAGMENT = 6  # characters of a secret's form that are masked wherever they appear
CUT_FRAGMENT = 4  # ... and at an edge where the text was cut
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_REPLACEMENT = "\ufffd"  # what a multi-byte character cut in half decodes to


def _bytes(value: str) -> bytes:
    """The bytes a program is given for ``value`` (an environment variable that is not
    UTF-8 reaches Python with its bytes escaped as surrogates)."""
    return value.encode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=4096)
def _httpx_char(component: str, char: str) -> str:
    """How httpx encodes one character in a URL component (probed through its public URL
    type, so this follows httpx rather than a copy of its tables). Characters that end the
    component (``?``, ``#``...) are kept as they are."""
    import httpx  # here: the CLI imports this module, and starts faster without httpx

    try:
        if component == "path" and char not in "?#":
            return httpx.URL("http://h/" + char).raw_path.decode()[1:]
        if component == "query" and char != "#":
            return httpx.URL("http://h/?" + char).query.decode()
        if component == "userinfo" and char not in "/?#@":
            return httpx.URL(f"http://{char}@h/").userinfo.decode()
    except (httpx.InvalidURL, UnicodeError):
        pass
    return char


def _httpx_forms(value: str) -> set[str]:
    return {"".join(_httpx_char(c, ch) for ch in value) for c in ("path", "query", "userinfo")}


def _base64_forms(data: bytes) -> set[str]:
    """The standalone base64 of ``data``, and the characters of its base64 that depend on
    ``data`` alone when it sits at offset 1 or 2 of a longer base64 text."""
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(data).decode()
        forms |= {whole, whole.rstrip("=")}
        for offset in (0, 1, 2):
            text = encode(bytes(offset) + data).decode()
            start = -(-8 * offset // 6)  # the first character made of data bits only
            end = 8 * (offset + len(data)) // 6
            if end - start >= FRAGMENT:  # shorter would match ordinary text by chance
                forms.add(text[start:end])
    return forms


def _escapes(value: str) -> set[str]:
    """JSON (ASCII and not, with and without ``\\/``), HTML and Python-repr escapes of
    ``value`` (error messages quote values with ``!r``)."""
    ascii_json = json.dumps(value)[1:-1]
    utf8_json = json.dumps(value, ensure_ascii=False)[1:-1]
    return {
        ascii_json,
        utf8_json,
        ascii_json.replace("/", "\\/"),
        html.escape(value),
        repr(value)[1:-1],
    }


@functools.lru_cache(maxsize=256)
def forms(value: str) -> frozenset[str]:
    """Every form of ``value`` to hide (see the module's docstring). Cached: each attempt
    builds its redactor from the same few secrets."""
    raw = _bytes(value)
    quoted = {
        urllib.parse.quote(raw, safe=""),
        urllib.parse.quote(raw),
        urllib.parse.quote_plus(raw),
        *_httpx_forms(value),
    }
    quoted |= {_PERCENT_ESCAPE.sub(lambda m: m.group(0).lower(), q) for q in quoted}
    base = {value, *quoted, *_base64_forms(raw)}
    once = {e for b in base for e in _escapes(b)}
    twice = {e for o in once for e in _escapes(o)}
    return frozenset(f for f in base | once | twice if f)


def _hex_forms(value: str) -> set[str]:
    """Hidden whole only: pieces of hex would be found by chance in every checksum."""
    return {_bytes(value).hex(), _bytes(value).hex().upper()}


def _public_part(value: str) -> str:
    """The scheme and host of a URL-valued secret: not secret, and shared with requests that
    carry no secret, so fragments of it alone are not masked."""
    if not value.startswith(("http://", "https://")):
        return ""
    import httpx

    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError, ValueError):
        return ""
    if url.scheme not in ("http", "https") or not url.host:
        return ""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}/"


def _grams(text: str) -> set[str]:
    return {text[i : i + FRAGMENT] for i in range(len(text) - FRAGMENT + 1)}


class Redactor:
    """Replaces known sensitive values, in every form, whole or in part, in text."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._forms: dict[str, str] = {}
        self._grams: set[str] = set()
        self._prefixes: set[str] = set()
        self._suffixes: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for name, value in (values or {}).items():
            self.add(value, f"{{secret:{name}}}")

    def add(self, value: str, placeholder: str = REDACTED) -> None:
        if not value:
            return
        public = _public_part(value)
        skip = {g for f in forms(public) for g in _grams(f)} if public else set()
        for form in _hex_forms(value) - set(self._forms):
            self._forms[form] = placeholder
        for form in forms(value):
            if form in self._forms:
                continue
            self._forms[form] = placeholder
            grams = _grams(form) - skip
            if form != value:  # a hex-only piece of an encoding would match checksums
                grams = {g for g in grams if not _HEX.fullmatch(g)}
            self._grams |= grams
            # Longer pieces are fragments anywhere (above); these are for the cut edges.
            short = range(CUT_FRAGMENT, min(FRAGMENT, len(form)))
            self._prefixes.update(form[:k] for k in short)
            self._suffixes.update(form[-k:] for k in short)
        self._pattern = None

    def add_all(self, values: Iterable[str]) -> None:
        for v in values:
            self.add(v)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def _whole(self) -> re.Pattern[str]:
        if self._pattern is None:
            ordered = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return self._pattern

    def _pieces(self, text: str, cut_start: bool, cut_end: bool) -> list[tuple[str, bool]]:
        """``text`` as (piece, is_replacement) pieces."""
        whole = {m.start(): m for m in self._whole().finditer(text)}
        masked = bytearray(len(text))
        for i in range(len(text) - FRAGMENT + 1):
            if text[i : i + FRAGMENT] in self._grams:
                masked[i : i + FRAGMENT] = b"\1" * FRAGMENT
        if cut_start:
            start = len(text) - len(text.lstrip(_REPLACEMENT))
            for k in range(min(FRAGMENT - 1, len(text) - start), CUT_FRAGMENT - 1, -1):
                if text[start : start + k] in self._suffixes:
                    masked[: start + k] = b"\1" * (start + k)
                    break
        if cut_end:
            end = len(text.rstrip(_REPLACEMENT))
            for k in range(min(FRAGMENT - 1, end), CUT_FRAGMENT - 1, -1):
                if text[end - k : end] in self._prefixes:
                    masked[end - k :] = b"\1" * (len(text) - end + k)
                    break
        pieces: list[tuple[str, bool]] = []
        i = 0
        while i < len(text):
            match = whole.get(i)
            if match is not None:
                pieces.append((self._forms[match.group(0)], True))
                i = match.end()
                continue
            j = i
            while j < len(text) and masked[j] and j not in whole:
                j += 1
            if j > i:
                pieces.append((REDACTED, True))
                i = j
                continue
            while j < len(text) and not masked[j] and j not in whole:
                j += 1
            pieces.append((text[i:j], False))
            i = j
        return pieces

    def redact(self, text: str, *, cut_start: bool = False, cut_end: bool = False) -> str:
        """``text`` with every form of every value, and every fragment of them, replaced.
        ``cut_start``/``cut_end``: the text was cut there, so shorter fragments count."""
        if not self._forms or not text:
            return text
        return "".join(p for p, _ in self._pieces(text, cut_start, cut_end))

    def tail(self, text: str, limit: int, *, cut_start: bool = False) -> tuple[str, bool]:
        """The redacted end of ``text``, about ``limit`` characters, cut between pieces so
        a placeholder is never split; and whether anything was left out."""
        return self._cut(text, limit, cut_start=cut_start, cut_end=False, from_end=True)

    def head(self, text: str, limit: int, *, cut_end: bool = False) -> tuple[str, bool]:
        """The redacted start of ``text`` (see ``tail``)."""
        return self._cut(text, limit, cut_start=False, cut_end=cut_end, from_end=False)

    def _cut(
        self, text: str, limit: int, *, cut_start: bool, cut_end: bool, from_end: bool
    ) -> tuple[str, bool]:
        pieces = self._pieces(text, cut_start, cut_end) if self._forms else [(text, False)]
        if from_end:
            pieces.reverse()
        kept: list[str] = []
        size = 0
        for piece, replaced in pieces:
            if size + len(piece) <= limit or (replaced and size < limit):
                kept.append(piece)
                size += len(piece)
                continue
            room = limit - size
            if room > 0:
                kept.append(piece[-room:] if from_end else piece[:room])
            return "".join(reversed(kept) if from_end else kept), True
        return "".join(reversed(kept) if from_end else kept), False

    def redact_data(self, data: Any) -> Any:
        """Redact every string in a JSON-like structure (keys too)."""
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {self.redact_data(k): self.redact_data(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.redact_data(v) for v in data]
        return data
