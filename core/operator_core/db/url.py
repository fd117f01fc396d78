"""Where the database is: ``--db`` / ``OPERATOR_DB`` names a SQLite file or a PostgreSQL URL.

A ``postgresql://`` or ``postgres://`` URL (any case) is a PostgreSQL database; anything else
is a SQLite path, exactly as before. A URL may carry a password, in its user part or as a
``password=`` query parameter: ``redact`` hides both, and everything that shows a URL (errors,
logs, the dashboard) shows only its redacted form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

POSTGRES_SCHEMES = ("postgresql", "postgres")
HIDDEN = "***"

# The scheme, then everything up to the query string (the authority and the path).
_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^?#]*)(?P<tail>.*)$", re.S)
# A ``password=...`` pair in a query string (the key may be percent-encoded).
_QUERY_PASSWORD_RE = re.compile(r"(?i)((?:^|[?&])(?:password|%70assword|pass%77ord)=)[^&#]*")


NOWHERE = Path("/dev/null/postgresql")
"""The stand-in path of a PostgreSQL database, for code that still names its database by a
path (messages, a kill file's or a listener's name): nothing can be made under /dev/null,
so no such code ever writes a file for a URL."""


def is_postgres_url(value: str | Path) -> bool:
    if isinstance(value, Path):
        return False
    match = _URL_RE.match(value.strip())
    return bool(match) and match["scheme"].lower() in POSTGRES_SCHEMES


@dataclass(frozen=True, slots=True)
class DbTarget:
    """A parsed ``--db``: exactly one of ``path`` (SQLite) and ``url`` (PostgreSQL)."""

    path: Path | None = None
    url: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.url is not None

    @property
    def display(self) -> str:
        """What output may show: the path, or the URL with any password hidden."""
        return redact(self.url) if self.url is not None else str(self.path)


def parse_target(value: str | Path) -> DbTarget:
    """A SQLite path or a PostgreSQL URL (kept as given: libpq parses it)."""
    if is_postgres_url(value):
        return DbTarget(url=str(value).strip())
    return DbTarget(path=Path(value).expanduser())


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``: in the user part (``user:pw@``) and in
    a ``password=`` query parameter. The user part ends at the last ``@`` before the query,
    so a password holding an unencoded ``@`` or ``/`` is still hidden whole."""
    match = _URL_RE.match(url)
    if match is None:
        return _QUERY_PASSWORD_RE.sub(r"\1" + HIDDEN, url)
    rest = match["rest"]
    userinfo, at, hostpart = rest.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        rest = f"{user}:{HIDDEN}@{hostpart}" if colon else rest
    tail = _QUERY_PASSWORD_RE.sub(r"\1" + HIDDEN, match["tail"])
    return f"{match['scheme']}://{rest}{tail}"


def passwords(url: str) -> list[str]:
    """Every password ``url`` carries, as given and decoded: what an error message from the
    driver must never contain (``scrub``)."""
    found: list[str] = []
    match = _URL_RE.match(url)
    if match is not None:
        userinfo, at, _host = match["rest"].rpartition("@")
        user, colon, password = userinfo.partition(":")
        if at and colon and password:
            found.append(password)
        tail = match["tail"]
    else:
        tail = url
    for pair in re.finditer(r"(?i)(?:^|[?&])(?:password|%70assword|pass%77ord)=([^&#]*)", tail):
        if pair[1]:
            found.append(pair[1])
    return sorted({p for raw in found for p in (raw, unquote(raw)) if p}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (say, a driver's error) on one line, with the URL redacted and none of its
    passwords left anywhere in it."""
    text = text.replace(url, redact(url))
    for password in passwords(url):
        text = text.replace(password, HIDDEN)
    return " ".join(text.split())
