"""A self-contained, signed ledger of audit events: verifiable on another machine without
the database.

JSON Lines, in this order (so a verifier streams it in one pass)::

    {"ledger": "operator-audit-ledger/1", "origin": ..., "key": <vkey>, "first": a,
     "last": b, "prev_hash": <hash of event a-1>}
    {"checkpoint": <signed note>}        each published checkpoint of an event in a..b
    {"event": [id, proposal_id, workflow_id, event_type, event_data, actor, timestamp,
               prev_hash, hash]}          each event a..b, in order
    {"seal": <base64 Ed25519 signature of SHA-256 of every line above>}

The checkpoints are the evidence (signed when the events were written); the seal only says
the file is whole as exported. Trust comes from the verifier key given to ``verify_ledger``;
without one the ledger's own key is used, which proves consistency, not authorship.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from operator_core.anchor.checkpoint import CheckpointError, SignedCheckpoint, parse
from operator_core.anchor.findings import Finding
from operator_core.anchor.keys import SigningKey, VerifierKey
from operator_core.anchor.verify import Report, verify_events
from operator_core.errors import ConfigError

FORMAT = "operator-audit-ledger/1"


class LedgerError(ConfigError):
    """A file that is not a ledger this version reads (one line saying why)."""


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=True) + "\n").encode()


def export_ledger(
    out: IO[bytes],
    rows: Iterable[Sequence[Any]],
    checkpoints: Iterable[SignedCheckpoint],
    key: SigningKey,
    origin: str,
    first: int,
    last: int,
    prev_hash: str,
) -> int:
    """Write events ``first``..``last`` (``rows``: EVENTS_RANGE_SQL's columns) and the
    checkpoints of ``origin`` among them to ``out``. Returns the number of events written."""
    digest = hashlib.sha256()

    def write(value: dict[str, Any]) -> None:
        data = _line(value)
        digest.update(data)
        out.write(data)

    write(
        {
            "ledger": FORMAT,
            "origin": origin,
            "key": key.verifier.vkey(),
            "first": first,
            "last": last,
            "prev_hash": prev_hash,
        }
    )
    seen: set[tuple[int, str]] = set()
    for signed in checkpoints:
        cp = signed.checkpoint
        if cp.origin == origin and first <= cp.size <= last and (cp.size, cp.head) not in seen:
            seen.add((cp.size, cp.head))
            write({"checkpoint": signed.text()})
    count = 0
    for row in rows:
        write({"event": list(row)})
        count += 1
    seal = base64.b64encode(key.sign(digest.digest())).decode()
    out.write(_line({"seal": seal}))
    return count


def export_ledger_file(path: Path | str, **kwargs: Any) -> int:
    with open(path, "wb") as out:
        return export_ledger(out, **kwargs)


def verify_ledger(lines: Iterable[bytes], key: VerifierKey | None = None) -> Report:
    """Check a ledger: its seal, the chain of its events and every checkpoint in it, with
    ``key`` (else the ledger's own key). Streams the events."""
    it = iter(lines)
    digest = hashlib.sha256()
    header = _read(it, digest, "ledger")
    if header.get("ledger") != FORMAT:
        raise LedgerError(f"not an {FORMAT} file (header {str(header)[:60]})")
    own = VerifierKey.parse(str(header["key"]))
    trusted = key or own
    extra: list[Finding] = []
    if key is not None and own != key:
        extra.append(
            Finding("foreign_key", f"the ledger was exported with another key ({own.vkey()[:40]})")
        )
    cps: list[SignedCheckpoint] = []
    state: dict[str, Any] = {}
    after: bytes | None = None
    for raw in it:
        value = json.loads(raw)
        if "checkpoint" not in value:
            after = raw
            break
        digest.update(raw)
        try:
            cps.append(parse(value["checkpoint"]))
        except CheckpointError as exc:
            extra.append(
                Finding("bad_checkpoint", f"a checkpoint in the ledger is unreadable: {exc}")
            )

    def events() -> Iterator[Sequence[Any]]:
        for raw in _chain(after, it):
            value = json.loads(raw)
            if "seal" in value:
                state["seal"] = value["seal"]
                return
            digest.update(raw)
            yield value["event"]

    report = verify_events(
        events(),
        cps,
        trusted,
        str(header["origin"]),
        first_prev=str(header["prev_hash"]),
        first_id=int(header["first"]),
    )
    report.findings.extend(extra)
    _check_seal(report, state.get("seal"), digest, trusted, int(header["last"]))
    return report


def verify_ledger_file(path: Path | str, key: VerifierKey | None = None) -> Report:
    with open(path, "rb") as f:
        return verify_ledger(f, key)


def _chain(first: bytes | None, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first is not None:
        yield first
    yield from rest


def _read(it: Iterator[bytes], digest: Any, what: str) -> dict[str, Any]:
    try:
        raw = next(it)
        value = json.loads(raw)
    except (StopIteration, ValueError) as exc:
        raise LedgerError(f"the ledger has no readable {what} line") from exc
    digest.update(raw)
    if not isinstance(value, dict):
        raise LedgerError(f"the ledger's {what} line is not an object")
    return value


def _check_seal(report: Report, seal: str | None, digest: Any, key: VerifierKey, last: int) -> None:
    out = report.findings
    if report.head_id != last:
        out.add(
            Finding(
                "truncated",
                f"the ledger says it holds events to {last}, but ends at {report.head_id}",
                report.head_id + 1,
                last,
            )
        )
    if seal is None:
        out.add(Finding("unsealed", "the ledger has no seal: it was cut short or edited"))
        return
    try:
        signature = base64.b64decode(seal, validate=True)
    except (ValueError, binascii.Error):
        signature = b""
    if not key.verify(signature, digest.digest()):
        out.add(Finding("bad_seal", "the ledger's seal does not match its contents: it was edited"))
