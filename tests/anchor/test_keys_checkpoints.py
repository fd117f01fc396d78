"""The audit signing key and the checkpoint text form."""

from __future__ import annotations

import base64
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from operator_core.anchor.checkpoint import (
    Checkpoint,
    CheckpointError,
    parse,
    read_checkpoints,
    sign,
)
from operator_core.anchor.keys import VerifierKey, load_signing_key
from operator_core.errors import ConfigError

HEAD = "ab" * 32
WHEN = datetime(2026, 12, 3, 18, 2, 11, 123000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPERATOR_AUDIT_KEY", raising=False)
    monkeypatch.delenv("OPERATOR_AUDIT_KEY_FILE", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_key_is_created_0600_beside_the_secrets_key_and_reused(tmp_path: Path) -> None:
    key = load_signing_key()
    assert key is not None
    path = tmp_path / "state" / "operator" / "audit.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_signing_key()
    assert again is not None and again.verifier == key.verifier


def test_missing_key_without_create_is_none(tmp_path: Path) -> None:
    assert load_signing_key(tmp_path / "none.key", create=False) is None


def test_key_file_open_to_others_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    load_signing_key(path)
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError) as err:
        load_signing_key(path)
    assert (
        str(err.value)
        == f"audit key file {path} is open to others (mode 640); run: chmod 600 {path}"
    )


def test_key_from_environment_and_key_file_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = base64.b64encode(bytes(range(32))).decode()
    monkeypatch.setenv("OPERATOR_AUDIT_KEY", seed)
    a = load_signing_key()
    monkeypatch.delenv("OPERATOR_AUDIT_KEY")
    path = tmp_path / "k"
    path.write_text(seed + "\n")
    path.chmod(0o600)
    monkeypatch.setenv("OPERATOR_AUDIT_KEY_FILE", str(path))
    b = load_signing_key()
    assert a is not None and b is not None and a.verifier == b.verifier
    monkeypatch.setenv("OPERATOR_AUDIT_KEY", "not base64!")
    with pytest.raises(ConfigError, match="OPERATOR_AUDIT_KEY is not a base64 Ed25519 seed"):
        load_signing_key()


def test_verifier_key_round_trips_and_rejects_a_wrong_hash(tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "k")
    assert key is not None
    vkey = key.verifier.vkey()
    assert vkey.startswith("operator-audit+")
    assert VerifierKey.parse(vkey) == key.verifier
    name, _, blob = vkey.split("+", 2)
    with pytest.raises(ConfigError, match="key hash does not match"):
        VerifierKey.parse(f"{name}+00000000+{blob}")


def test_checkpoint_text_is_a_signed_note(tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "k")
    assert key is not None
    signed = sign(Checkpoint("operator/db1", 131, HEAD, WHEN), key)
    text = signed.text()
    body, sig = text.split("\n\n")
    assert body.split("\n") == [
        "operator/db1",
        "131",
        base64.b64encode(bytes.fromhex(HEAD)).decode(),
        "time 2026-12-03T18:02:11.123Z",
    ]
    assert sig.startswith("\u2014 operator-audit ")
    assert parse(text) == signed
    assert parse(signed.one_line()) == signed
    assert parse(text).verified_by(key.verifier)
    other = load_signing_key(tmp_path / "other")
    assert other is not None and not parse(text).verified_by(other.verifier)


def test_edited_checkpoint_fails_its_signature(tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "k")
    assert key is not None
    text = sign(Checkpoint("operator/db1", 131, HEAD, WHEN), key).text()
    forged = parse(text.replace("\n131\n", "\n130\n"))
    assert forged.checkpoint.size == 130 and not forged.verified_by(key.verifier)


@pytest.mark.parametrize(
    "text",
    ["", "operator/db1\n12\n", "o\nx\nAAAA\ntime 2026-01-01T00:00:00Z\n\n\u2014 k AAAA\n"],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse(text)


def test_reading_a_file_tolerates_a_torn_last_record(tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "k")
    assert key is not None
    records = [sign(Checkpoint("o", n, HEAD, WHEN), key).text() + "\n" for n in (1, 2, 3)]
    whole = "".join(records)
    torn = whole[: len(whole) - 30]
    result = read_checkpoints(torn.splitlines(keepends=True))
    assert [c.checkpoint.size for c in result.checkpoints] == [1, 2] and result.torn == 1
    result = read_checkpoints(whole.splitlines(keepends=True))
    assert [c.checkpoint.size for c in result.checkpoints] == [1, 2, 3] and not result.torn
    garbled = whole.replace("\n2\n", "\nzz\n")
    result = read_checkpoints(garbled.splitlines(keepends=True))
    assert len(result.checkpoints) == 2 and result.malformed == 1
