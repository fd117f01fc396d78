"""Who is acting: the operating system's answer, not the caller's.

The identity of a process is the account it runs as (looked up from its uid, never from
``USER`` or ``LOGNAME``, which anyone can set) and the host it runs on. A caller may add a
label (``--actor``, ``OPERATOR_ACTOR``, ``proposed_by=`` in Python); the label is recorded
beside the identity and shown, but the four-eyes rule compares identities only.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """An OS account on a host: ``text`` is what the database records (``alice@host``)."""

    uid: int
    user: str
    host: str

    @property
    def text(self) -> str:
        return f"{self.user}@{self.host}"


@functools.cache
def current_identity() -> Identity:
    """The account this process runs as (its real uid), looked up once."""
    uid = os.getuid()
    try:
        import pwd

        user = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        user = f"uid{uid}"
    return Identity(uid, user, socket.gethostname() or "localhost")


def actor_text(label: str | None, identity: str) -> str:
    """What the audit log shows as the actor: the identity, and the caller's label in
    brackets when it says something else (``alice@host (deploy-bot)``)."""
    label = (label or "").strip()
    if not label or label == identity:
        return identity
    return f"{identity} ({label})"


def person(identity: str) -> str:
    """The account part of an identity, compared for the four-eyes rule: the same account
    name on another host is the same person, whatever its case or surrounding spaces."""
    return identity.rpartition("@")[0].strip().casefold() or identity.strip().casefold()


def same_person(a: str, b: str) -> bool:
    return person(a) == person(b)
