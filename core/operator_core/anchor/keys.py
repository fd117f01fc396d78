"""The audit signing key: Ed25519, kept outside the database, created on first use.

The private key comes from ``OPERATOR_AUDIT_KEY`` (base64 of the 32-byte seed) or from a key
file of mode 0600 (``OPERATOR_AUDIT_KEY_FILE``, default ``audit.key`` beside the secrets key).
Verifiers need only the public key, exported as a c2sp.org/signed-note verifier key
(``name+keyhash+base64``), so anyone holding that line can check a checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from operator_core.errors import ConfigError
from operator_core.secrets import state_dir

KEY_ENV = "OPERATOR_AUDIT_KEY"
KEY_FILE_ENV = "OPERATOR_AUDIT_KEY_FILE"
KEY_NAME = "operator-audit"
# signed-note's algorithm byte for Ed25519.
_ED25519 = b"\x01"


def default_key_file() -> Path:
    return Path(os.environ.get(KEY_FILE_ENV) or state_dir() / "audit.key").expanduser()


def key_hash(name: str, public: bytes) -> bytes:
    """signed-note's key id: the first 4 bytes of SHA-256(name, newline, alg, key)."""
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A public key with its name: all a verifier needs."""

    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        return key_hash(self.name, self.public)

    def vkey(self) -> str:
        """The c2sp verifier-key line: ``name+hex(keyhash)+base64(alg || key)``."""
        blob = base64.b64encode(_ED25519 + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        try:
            name, hex_id, blob = text.strip().split("+", 2)
            raw = base64.b64decode(blob, validate=True)
            given = bytes.fromhex(hex_id)
        except (ValueError, binascii.Error) as exc:
            raise ConfigError(f"not an audit verifier key: {text.strip()[:60]!r}") from exc
        if len(raw) != 33 or raw[:1] != _ED25519:
            raise ConfigError(f"verifier key {name!r} is not an Ed25519 key")
        key = cls(name, raw[1:])
        if key.key_id != given:
            raise ConfigError(f"verifier key {name!r}: its key hash does not match the key")
        return key

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    name: str
    private: Ed25519PrivateKey

    @property
    def verifier(self) -> VerifierKey:
        public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerifierKey(self.name, public)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def _from_seed(text: str | bytes, source: str, name: str) -> SigningKey:
    try:
        seed = base64.b64decode(text.strip(), validate=True)
        return SigningKey(name, Ed25519PrivateKey.from_private_bytes(seed))
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(
            f"the audit key from {source} is not a base64 Ed25519 seed (32 bytes)"
        ) from exc


def load_signing_key(
    key_file: Path | str | None = None, create: bool = True, name: str = KEY_NAME
) -> SigningKey | None:
    """The signing key from ``OPERATOR_AUDIT_KEY`` or the key file, which is created (mode
    0600; two processes starting at once agree on one key) when missing and
    ``create``; None if missing and not ``create``. A key file that group or others may
    read or write is refused: ConfigError, one line saying how to fix it."""
    env_key = os.environ.get(KEY_ENV)
    if env_key:
        return _from_seed(env_key, KEY_ENV, name)
    path = Path(key_file).expanduser() if key_file else default_key_file()
    try:
        info = path.stat()
    except FileNotFoundError:
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        text = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()) + b"\n"
        # Written whole under a private name, then linked into place: link fails if another
        # process got there first, and nobody ever reads a half-written key.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            return load_signing_key(path, create=False, name=name)
        finally:
            tmp.unlink(missing_ok=True)
        return _from_seed(text, str(path), name)
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"audit key file {path} is open to others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run: chmod 600 {path}"
        )
    return _from_seed(path.read_bytes(), str(path), name)
