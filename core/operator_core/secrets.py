"""Secrets that runbook templates use as ``{secret:NAME}``, and the log filter that keeps their
values out of every log line (the redaction itself, of every form a value takes, is in
``operator_core.redaction``).

A value comes from the environment (``OPERATOR_SECRET_NAME``) or from an encrypted secrets
file (Fernet; the key from ``OPERATOR_SECRET_KEY`` or a key file of mode 0600). Default
locations sit next to the default database, under ``$XDG_STATE_HOME/operator/`` (else
``~/.local/state/operator/``); ``OPERATOR_SECRETS_FILE`` and ``OPERATOR_SECRET_KEY_FILE``
override them.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from operator_core.errors import ConfigError
from operator_core.redaction import REDACTED, Redactor

ENV_PREFIX = "OPERATOR_SECRET_"
KEY_ENV = "OPERATOR_SECRET_KEY"
KEY_FILE_ENV = "OPERATOR_SECRET_KEY_FILE"
SECRETS_FILE_ENV = "OPERATOR_SECRETS_FILE"

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# OPERATOR_SECRET_KEY and OPERATOR_SECRET_KEY_FILE configure the store itself.
_RESERVED = {"KEY", "KEY_FILE"}


def state_dir() -> Path:
    """Where Operator keeps its state by default (the default database lives here too)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "operator"


def default_secrets_file() -> Path:
    return Path(os.environ.get(SECRETS_FILE_ENV) or state_dir() / "secrets.enc").expanduser()


def default_key_file() -> Path:
    return Path(os.environ.get(KEY_FILE_ENV) or state_dir() / "secret.key").expanduser()


def check_name(name: str) -> str:
    """A secret name is an identifier (it becomes part of an environment variable name)."""
    if not NAME_RE.fullmatch(name or ""):
        raise ConfigError(
            f"bad secret name {name!r}: use letters, digits and underscores, not starting "
            "with a digit"
        )
    if name.upper() in _RESERVED:
        raise ConfigError(
            f"secret name {name!r} is reserved ({ENV_PREFIX}{name.upper()} configures the "
            "secret store)"
        )
    return name


# A scoped secret is kept as NAME@AUTOMATION: neither a secret's name (an identifier) nor an
# automation's name may contain "@", so the two never collide.
SCOPE = "@"
# automations.definition.NAME_PATTERN, without importing the definitions (pydantic).
AUTOMATION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def scoped_key(name: str, automation: str) -> str:
    check_name(name)
    if not AUTOMATION_RE.fullmatch(automation or ""):
        raise ConfigError(
            f"bad automation name {automation!r}: letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return f"{name}{SCOPE}{automation}"


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class SecretStore:
    """The encrypted secrets file: a Fernet token holding a JSON object of name → value."""

    def __init__(self, path: Path | str | None = None, key_file: Path | str | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_secrets_file()
        self.key_file = Path(key_file).expanduser() if key_file else default_key_file()

    def _key(self, create: bool) -> bytes | None:
        env_key = os.environ.get(KEY_ENV)
        if env_key:
            return env_key.strip().encode()
        try:
            info = self.key_file.stat()
        except FileNotFoundError:
            if not create:
                return None
            key = Fernet.generate_key()
            self.key_file.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return self._key(create=False)
            with os.fdopen(fd, "wb") as f:
                f.write(key + b"\n")
            return key
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"secret key file {self.key_file} is readable by others (mode "
                f"{stat.S_IMODE(info.st_mode):o}); run: chmod 600 {self.key_file}"
            )
        return self.key_file.read_bytes().strip()

    def _fernet(self, create: bool) -> Fernet | None:
        key = self._key(create)
        if key is None:
            return None
        try:
            return Fernet(key)
        except ValueError as exc:
            source = KEY_ENV if os.environ.get(KEY_ENV) else str(self.key_file)
            raise ConfigError(f"the secret key from {source} is not a valid Fernet key") from exc

    def _load(self, fernet: Fernet | None) -> dict[str, str]:
        if not self.path.exists():
            return {}
        if fernet is None:
            raise ConfigError(
                f"secrets file {self.path} exists but no key was found: set {KEY_ENV} or "
                f"provide the key file {self.key_file}"
            )
        try:
            plain = fernet.decrypt(self.path.read_bytes().strip())
        except InvalidToken as exc:
            raise ConfigError(
                f"cannot decrypt secrets file {self.path}: wrong key, or the file is damaged"
            ) from exc
        data = json.loads(plain)
        if not isinstance(data, dict):
            raise ConfigError(f"secrets file {self.path} does not hold a name → value table")
        return {str(k): str(v) for k, v in data.items()}

    def _save(self, fernet: Fernet, data: Mapping[str, str]) -> None:
        token = fernet.encrypt(json.dumps(dict(sorted(data.items()))).encode())
        _write_private(self.path, token + b"\n")

    def names(self) -> list[str]:
        """The global secrets' names."""
        return sorted(k for k in self._load(self._fernet(create=False)) if SCOPE not in k)

    def scoped_names(self) -> list[tuple[str, str]]:
        """(automation, name) of every secret scoped to an automation."""
        pairs = []
        for key in self._load(self._fernet(create=False)):
            name, scoped, automation = key.partition(SCOPE)
            if scoped:
                pairs.append((automation, name))
        return sorted(pairs)

    def get(self, name: str) -> str | None:
        """The global value of ``name``."""
        if not self.path.exists():
            return None
        return self._load(self._fernet(create=False)).get(name)

    def get_scoped(self, name: str, automation: str) -> str | None:
        """Only the value scoped to ``automation`` (None if it has none)."""
        if not self.path.exists():
            return None
        return self._load(self._fernet(create=False)).get(scoped_key(name, automation))

    def set(self, name: str, value: str, automation: str | None = None) -> None:
        """Store ``name``; with ``automation``, a value only that automation's runs see."""
        check_name(name)
        key = name if automation is None else scoped_key(name, automation)
        if not value:
            raise ConfigError(f"secret {name}: the value is empty")
        # A new key only for a new file: a fresh key could not read an existing one.
        fernet = self._fernet(create=not self.path.exists())
        if fernet is None:
            raise ConfigError(
                f"secrets file {self.path} exists but no key was found: set {KEY_ENV} or "
                f"provide the key file {self.key_file}"
            )
        data = self._load(fernet)
        data[key] = value
        self._save(fernet, data)

    def delete(self, name: str, automation: str | None = None) -> bool:
        """Remove a secret (the automation's own, given ``automation``); False if it was not
        in the file."""
        key = name if automation is None else scoped_key(name, automation)
        fernet = self._fernet(create=False)
        data = self._load(fernet)
        if key not in data:
            return False
        assert fernet is not None
        del data[key]
        self._save(fernet, data)
        return True


def env_value(name: str) -> str | None:
    """``OPERATOR_SECRET_<NAME>`` (exact spelling, then upper case)."""
    for var in (ENV_PREFIX + name, ENV_PREFIX + name.upper()):
        value = os.environ.get(var)
        if value:
            return value
    return None


class SecretResolver:
    """Looks secrets up and remembers every value it handed out, so the caller can redact
    them. For an automation's run (``automation``), the automation's own value comes first;
    then the environment, then the secrets file."""

    def __init__(self, store: SecretStore | None = None, automation: str | None = None) -> None:
        self._store = store
        self._automation = automation
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        check_name(name)
        store = self._store or SecretStore()
        value = None
        if self._automation is not None:
            value = store.get_scoped(name, self._automation)
        if value is None:
            value = env_value(name)
        if value is None:
            value = store.get(name)
        if not value:
            raise ConfigError(
                f"secret {name} is not set: export {ENV_PREFIX}{name} or run "
                f"`operator secrets set {name}`"
            )
        self.values[name] = value
        register_sensitive(value, name)
        return value


# Every value resolved in this process, for the logging filter below.
_SENSITIVE = Redactor()
_SENSITIVE_LOCK = threading.Lock()


def register_sensitive(value: str, name: str | None = None) -> None:
    with _SENSITIVE_LOCK:
        _SENSITIVE.add(value, f"{{secret:{name}}}" if name else REDACTED)


class RedactingFilter(logging.Filter):
    """Rewrites log records that contain a sensitive value (httpx logs request URLs), the
    traceback and stack of the record included."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _SENSITIVE:
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True
        with _SENSITIVE_LOCK:
            redacted = _SENSITIVE.redact(message)
            if record.exc_info and not record.exc_text:
                record.exc_text = _FORMATTER.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = _SENSITIVE.redact(record.exc_text)
            if record.stack_info:
                record.stack_info = _SENSITIVE.redact(record.stack_info)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FORMATTER = logging.Formatter()
_FILTER = RedactingFilter()
# A logger's filters do not apply to records propagated from its children, so each logger
# is named; the handlers that exist (and Python's last-resort handler) get it too.
_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "asyncio",
    "operator.runner",
    "operator.demo",
)


def install_log_filter() -> None:
    """Attach the redacting filter to the loggers that may see secrets and to the handlers
    that write log lines (the runner's log)."""
    targets: list[logging.Filterer] = [logging.getLogger(n) for n in _LOGGERS]
    targets += logging.getLogger().handlers
    if logging.lastResort is not None:
        targets.append(logging.lastResort)
    for target in targets:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)


def basic_token(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()
