"""Signed checkpoints of the audit chain, in the text form of transparency logs
(c2sp.org/tlog-checkpoint inside a c2sp.org/signed-note)::

    <origin>
    <sequence: id of the last event covered>
    <base64 of the head hash>
    time 2026-12-03T18:02:11.123Z

    — operator-audit <base64(key hash || Ed25519 signature)>

The signature covers the body (the lines before the blank line, each ending in a newline),
so a checkpoint is checked with the public key alone, and ``grep`` finds one by its origin
or sequence in a file, in syslog or in a webhook's log.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from operator_core.anchor.keys import SigningKey, VerifierKey

SIG_PREFIX = "\u2014 "
# Syslog and one-line logs carry a checkpoint with its newlines shown as this separator,
# which no line of a checkpoint can contain (origins have no spaces).
ONE_LINE_SEP = " | "


class CheckpointError(ValueError):
    """Text that is not a well-formed checkpoint."""


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def check_origin(origin: str) -> str:
    if not origin or not origin.isprintable() or any(c.isspace() for c in origin):
        raise CheckpointError(f"bad checkpoint origin {origin!r}: printable, no spaces")
    return origin


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint asserts: the chain of ``origin`` had event ``size`` with hash
    ``head`` (hex, as the table stores it) at ``time``."""

    origin: str
    size: int
    head: str
    time: datetime

    def body(self) -> str:
        head = base64.b64encode(bytes.fromhex(self.head)).decode()
        return f"{self.origin}\n{self.size}\n{head}\ntime {format_time(self.time)}\n"

    def short_time(self) -> str:
        """The time as a message shows it (``18:02:11Z``)."""
        return self.time.strftime("%H:%M:%SZ")


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signatures: tuple[Signature, ...]

    def text(self) -> str:
        """The signed note, ending in a newline."""
        lines = [
            f"{SIG_PREFIX}{s.name} {base64.b64encode(s.key_id + s.signature).decode()}\n"
            for s in self.signatures
        ]
        return self.checkpoint.body() + "\n" + "".join(lines)

    def one_line(self) -> str:
        return self.text().rstrip("\n").replace("\n", ONE_LINE_SEP)

    def verified_by(self, key: VerifierKey) -> bool:
        """True if a signature by ``key`` (same name and key id) covers the body."""
        body = self.checkpoint.body().encode()
        return any(
            s.name == key.name and s.key_id == key.key_id and key.verify(s.signature, body)
            for s in self.signatures
        )


def sign(checkpoint: Checkpoint, key: SigningKey) -> SignedCheckpoint:
    check_origin(checkpoint.origin)
    verifier = key.verifier
    sig = key.sign(checkpoint.body().encode())
    return SignedCheckpoint(checkpoint, (Signature(verifier.name, verifier.key_id, sig),))


def _parse_body(lines: list[str]) -> Checkpoint:
    if len(lines) < 4:
        raise CheckpointError("a checkpoint body has origin, size, hash and time lines")
    origin, size, head, time_line = lines[:4]
    try:
        raw = base64.b64decode(head, validate=True)
        if not size.isdigit() or len(raw) != 32 or not time_line.startswith("time "):
            raise ValueError
        return Checkpoint(check_origin(origin), int(size), raw.hex(), parse_time(time_line[5:]))
    except (ValueError, binascii.Error) as exc:
        raise CheckpointError(f"malformed checkpoint body for {origin!r}") from exc


def _parse_signature(line: str) -> Signature:
    try:
        name, blob = line[len(SIG_PREFIX) :].split(" ", 1)
        raw = base64.b64decode(blob, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise CheckpointError(f"malformed signature line {line[:40]!r}") from exc
    if len(raw) != 4 + 64:
        raise CheckpointError(f"signature by {name!r} is not an Ed25519 signature")
    return Signature(name, raw[:4], raw[4:])


def parse(text: str) -> SignedCheckpoint:
    """One signed note (the form ``SignedCheckpoint.text`` writes) or its one-line form."""
    if "\n" not in text.strip() and ONE_LINE_SEP in text:
        text = text.strip().replace(ONE_LINE_SEP, "\n") + "\n"
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise CheckpointError("a checkpoint needs a blank line before its signatures")
    checkpoint = _parse_body(body.split("\n"))
    lines = [line for line in sigs.split("\n") if line]
    if not lines or not all(line.startswith(SIG_PREFIX) for line in lines):
        raise CheckpointError(f"checkpoint {checkpoint.size}: no signature lines")
    return SignedCheckpoint(checkpoint, tuple(_parse_signature(line) for line in lines))


@dataclass
class ReadResult:
    """Checkpoints read from a stream, and what could not be read (a torn last record is
    what a crash mid-write leaves; anything else malformed is worth a finding)."""

    checkpoints: list[SignedCheckpoint]
    torn: int = 0
    malformed: int = 0


def iter_records(lines: Iterable[str]) -> Iterator[str | None]:
    """Split a checkpoint file into records, each a note and a blank line. Yields each
    complete record's text, and None for the remains of a write cut short by a crash
    (a record ends only at a blank line after a signature line, so a torn one never
    swallows the record written after it)."""
    body: list[str] = []
    sigs: list[str] = []
    in_sigs = False
    for line in lines:
        if not line.endswith("\n"):
            body = [line]  # the last line was cut short
            break
        if not in_sigs:
            if line == "\n":
                in_sigs = bool(body)
            else:
                body.append(line)
        elif line.startswith(SIG_PREFIX):
            sigs.append(line)
        else:
            yield "".join(body) + "\n" + "".join(sigs) if sigs else None
            body, sigs, in_sigs = ([] if line == "\n" else [line]), [], False
    if body:
        yield None


def read_checkpoints(lines: Iterable[str]) -> ReadResult:
    result = ReadResult([])
    for record in iter_records(lines):
        if record is None:
            result.torn += 1
            continue
        try:
            result.checkpoints.append(parse(record))
        except CheckpointError:
            result.malformed += 1
    return result
