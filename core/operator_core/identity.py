"""Who is acting: the operating system's answer, not the caller's.

The identity of a process is the account it runs as (looked up from its uid, never from
``USER`` or ``LOGNAME``, which anyone can set) and the host it runs on. A caller may add a
label (``--actor``, ``OPERATOR_ACTOR``, ``proposed_by=`` in Python); the label is recorded
beside the identity and shown, but the four-eyes rule compares identities only.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from dataclasses import dataclass

from operator_core.errors import ValidationError

AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


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


def check_agent_name(name: str) -> str:
    """An agent's name: letters, digits, '_', '.', '-' (a colon would let it pose as
    another kind of proposer)."""
    if not AGENT_NAME.fullmatch(name):
        raise ValidationError(
            f"agent name {name!r} must be 1-64 letters, digits, '_', '.' or '-'", "agent"
        )
    return name
