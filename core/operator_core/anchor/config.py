"""Checkpointing as the operator configures it, from the environment:

- ``OPERATOR_AUDIT_CHECKPOINT_DIR``: append checkpoints to ``checkpoints.log`` there (``off``:
  no file; unset: ``checkpoints/`` in the state directory, see ``runtime.py``);
- ``OPERATOR_AUDIT_SYSLOG``: ``1`` for /dev/log, a unix socket path, or ``host:port`` (UDP);
- ``OPERATOR_AUDIT_WEBHOOK``: a URL to POST each checkpoint to;
- ``OPERATOR_AUDIT_EVERY`` (events, default 1000) and ``OPERATOR_AUDIT_SECONDS`` (default 5).

The signing key is ``keys.load_signing_key`` (``OPERATOR_AUDIT_KEY``/``_KEY_FILE``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from operator_core.anchor.chain import new_origin
from operator_core.anchor.keys import load_signing_key
from operator_core.anchor.publisher import Publisher
from operator_core.anchor.sinks import FileSink, Sink, SyslogSink, WebhookSink
from operator_core.errors import ConfigError
from operator_core.secrets import state_dir

__all__ = ["checkpoint_dir", "new_origin", "publisher_from_env", "sinks_from_env"]

DIR_ENV = "OPERATOR_AUDIT_CHECKPOINT_DIR"
SYSLOG_ENV = "OPERATOR_AUDIT_SYSLOG"
WEBHOOK_ENV = "OPERATOR_AUDIT_WEBHOOK"
EVERY_ENV = "OPERATOR_AUDIT_EVERY"
SECONDS_ENV = "OPERATOR_AUDIT_SECONDS"


def _syslog_address(text: str) -> str | tuple[str, int]:
    if text in ("1", "true", "yes"):
        return "/dev/log"
    if text.startswith("/"):
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"{SYSLOG_ENV}={text!r}: use 1, a socket path, or host:port")
    return host, int(port)


OFF = frozenset({"off", "none", "no", "0", "false"})


def checkpoint_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """The directory of the checkpoint file as configured: the setting, else the default
    beside the signing key; None when turned off."""
    env = os.environ if env is None else env
    value = env.get(DIR_ENV)
    if value is None:
        return state_dir() / "checkpoints"
    if value.strip().lower() in OFF or not value.strip():
        return None
    return Path(value).expanduser()


def sinks_from_env(env: Mapping[str, str] | None = None) -> list[Sink]:
    env = os.environ if env is None else env
    sinks: list[Sink] = []
    if (directory := env.get(DIR_ENV)) and directory.strip().lower() not in OFF:
        if not os.path.isdir(directory):
            raise ConfigError(f"{DIR_ENV}={directory!r} is not a directory")
        sinks.append(FileSink(directory))
    if syslog := env.get(SYSLOG_ENV):
        sinks.append(SyslogSink(_syslog_address(syslog)))
    if url := env.get(WEBHOOK_ENV):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{WEBHOOK_ENV}={url!r} is not an http(s) URL")
        sinks.append(WebhookSink(url))
    return sinks


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{name}={text!r}: expected a positive number")
    return value


def publisher_from_env(
    origin: str,
    env: Mapping[str, str] | None = None,
    head_source: Callable[[], tuple[int, str] | None] | None = None,
) -> Publisher | None:
    """The configured publisher (not started), or None when no sink is configured."""
    env = os.environ if env is None else env
    sinks = sinks_from_env(env)
    if not sinks:
        return None
    key = load_signing_key()
    assert key is not None
    return Publisher(
        key,
        origin,
        sinks,
        every_events=int(_number(env, EVERY_ENV, 1000)),
        every_seconds=_number(env, SECONDS_ENV, 5.0),
        head_source=head_source,
    )
