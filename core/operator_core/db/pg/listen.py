"""Cross-host wake-ups on PostgreSQL: NOTIFY at every changing commit, LISTEN per process.

The counterpart of ``operator_core.notify`` (abstract sockets on one host). Every write
transaction that changed a row sends ``NOTIFY`` in the same round trip as its ``COMMIT``
(``commit_sql``), so it is delivered exactly when the change is visible and never for a
rollback. Each process keeps one listening connection per URL (``_Hub``: its own thread,
autocommit, ``LISTEN``), whatever number of runners and dashboards wait in it; each waiter
is a ``PgListener`` with the interface of ``notify.Listener`` (``start``, ``stop``,
``event``). The hub reconnects after a server restart and then wakes every waiter, since
what was committed while it was away sent no notification it could see. The poll of
``data_version`` stays the fallback: a missed notification only delays.

Channels belong to one database on the server, so one fixed channel name is specific to
the database. Behind a transaction-mode pooler LISTEN does not work: ``OPERATOR_PG_LISTEN_URL``
names a direct (or session-mode) connection for it, or ``off`` (poll only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from typing import Any

from operator_core.db.url import redact, scrub
from operator_core.errors import ConfigError

log = logging.getLogger("operator.listen")

CHANNEL = "operator_changed"
"""The one channel: NOTIFY reaches listeners of the same database only."""

LISTEN_URL_ENV = "OPERATOR_PG_LISTEN_URL"
POLL_ENV = "OPERATOR_PG_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 0.5

TICK = 1.0  # how often the hub's thread looks at its stop flag between notifications
KEEPALIVE = 15.0  # seconds without a notification before the hub checks its connection
RETRY_FIRST, RETRY_LONGEST = 0.1, 2.0  # reconnection back-off
CONNECT_TIMEOUT = 5


def commit_sql(token: str) -> str:
    """COMMIT preceded by this connection's NOTIFY, as one simple-protocol round trip. The
    payload names the sending connection (``token``: hex), so its own process's waiters on
    the same store can skip it, as a SQLite store skips its own listener."""
    return f"NOTIFY {CHANNEL}, '{token}'; COMMIT"


POKE_SQL = f"NOTIFY {CHANNEL}"  # no payload: wakes every waiter, ours too


def listen_url(url: str) -> str | None:
    """Where to LISTEN: ``OPERATOR_PG_LISTEN_URL`` if set (``off``: nowhere), else ``url``."""
    given = (os.environ.get(LISTEN_URL_ENV) or "").strip()
    if not given:
        return url
    if given.lower() == "off":
        return None
    if not given.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"{LISTEN_URL_ENV} must be a postgresql:// URL or off, not '{redact(given)}'"
        )
    return given


def poll_seconds() -> float:
    from operator_core.env import env_number

    return env_number(POLL_ENV, DEFAULT_POLL_SECONDS, low=0.01, high=3600, unit=" (seconds)")


class _Hub:
    """One LISTEN connection on its own thread, fanning notifications out to waiters."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waiters: set[PgListener] = set()
        self.listening = threading.Event()  # tests and the benchmark wait for it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="operator-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()  # the thread ends within TICK and closes its connection

    def _wake(self, payload: str | None) -> None:
        for waiter in list(self.waiters):
            waiter.wake(payload)

    def _run(self) -> None:
        import psycopg

        delay, down_since = RETRY_FIRST, None
        while not self._stop.is_set():
            try:
                conn = psycopg.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT,
                    application_name="operator-listen",
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=3,
                )
            except psycopg.Error as exc:
                down_since = down_since or self._down(exc, first=True)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_LONGEST)
                continue
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                if down_since is not None:
                    log.warning(
                        "wake-ups from other hosts back after %.1fs", time.monotonic() - down_since
                    )
                down_since, delay = None, RETRY_FIRST
                self._wake(None)  # what committed while we were not listening
                self._listen(conn)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    break  # stopped while the database went (a test dropping it)
                down_since = down_since or self._down(exc, first=False)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    conn.close()

    def _listen(self, conn: Any) -> None:
        idle = 0.0
        while not self._stop.is_set():
            got = False
            for note in conn.notifies(timeout=TICK):
                got = True
                self._wake(note.payload)
                if self._stop.is_set():
                    return
            idle = 0.0 if got else idle + TICK
            if idle >= KEEPALIVE:  # a half-open connection shows itself here
                conn.execute("SELECT 1")
                idle = 0.0

    def _down(self, exc: BaseException, *, first: bool) -> float:
        why = scrub(str(exc) or type(exc).__name__, self.url)
        what = "cannot LISTEN" if first else "lost the LISTEN connection"
        log.warning(
            "%s at %s (%s); polling for changes until it is back", what, redact(self.url), why
        )
        return time.monotonic()


_hubs: dict[str, _Hub] = {}
_hubs_lock = threading.Lock()


def _join(url: str, waiter: PgListener) -> _Hub:
    with _hubs_lock:
        hub = _hubs.get(url)
        if hub is None:
            hub = _hubs[url] = _Hub(url)
            hub.start()
        hub.waiters.add(waiter)
        return hub


def _leave(hub: _Hub, waiter: PgListener) -> None:
    with _hubs_lock:
        hub.waiters.discard(waiter)
        if not hub.waiters and _hubs.get(hub.url) is hub:
            del _hubs[hub.url]
            hub.stop()


class PgListener:
    """Receives other connections' commits; ``event`` is set whenever one committed a
    change (or the listening connection came back after a gap)."""

    def __init__(self, url: str | None, own_token: str | None = None) -> None:
        self._url = url
        self._own = own_token
        self.name = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hub: _Hub | None = None

    def start(self) -> bool:
        """Join this process's listening connection; False when listening is off."""
        if self._url is None:
            return False
        self._loop = asyncio.get_running_loop()
        self._hub = _join(self._url, self)
        return True

    @property
    def listening(self) -> threading.Event | None:
        return None if self._hub is None else self._hub.listening

    def wake(self, payload: str | None) -> None:
        """From the hub's thread: set ``event`` on our loop unless we sent it ourselves."""
        if payload and payload == self._own:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.event.set)

    def stop(self) -> None:
        if self._hub is not None:
            _leave(self._hub, self)
            self._hub = None
        self._loop = None


def poke(url: str, timeout: float = CONNECT_TIMEOUT) -> threading.Thread:
    """NOTIFY every waiter on the database now, from a connection of its own on a thread
    of its own: neither a busy worker nor a held write lock delays it, and the caller never
    waits. Not a daemon: a command that exits at once still sends it."""

    def send() -> None:
        import psycopg

        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=int(timeout)) as conn:
                conn.execute(POKE_SQL)
        except psycopg.Error as exc:
            log.warning("could not wake the other hosts: %s", scrub(str(exc), url))

    thread = threading.Thread(target=send, name="operator-poke")
    thread.start()
    return thread
