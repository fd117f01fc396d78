"""What every benchmark shares: figures and their statistics, the machine description,
runner subprocesses and raw reads of the real database."""

from __future__ import annotations

import compileall
import contextlib
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
NOOP_SUBJECT = "bench.subjects:NoopSubject"
DB_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


# ---------------------------------------------------------------------- figures


@dataclass
class Figure:
    """One line of the report: our value per run and, where a peer exists, the peer's value
    from the same run. ``ratio`` is ours/peer per run (then summarised like any figure)."""

    bench: str
    name: str
    unit: str
    ours: list[float] = field(default_factory=list)
    peer: list[float] | None = None
    peer_label: str = "Huey"
    target: str = ""
    meets: Callable[[float], bool] | None = None
    """Judges the median of ``ratios`` if ``judge_ratio``, else the median of ``ours``."""
    judge_ratio: bool = False

    @property
    def ratios(self) -> list[float]:
        if not self.peer:
            return []
        return [o / p for o, p in zip(self.ours, self.peer, strict=False) if p]

    def verdict(self) -> str:
        values = self.ratios if self.judge_ratio else self.ours
        if self.meets is None or not values:
            return ""
        return "met" if self.meets(median(values)) else "MISSED"


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt_value(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def summary(values: list[float], suffix: str = "") -> str:
    """``median [min..max]``, the form of every figure in the report."""
    if not values:
        return "–"
    return (
        f"{fmt_value(median(values))}{suffix} [{fmt_value(min(values))}..{fmt_value(max(values))}]"
    )


# ---------------------------------------------------------------------- the machine


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    versions = {}
    for name in ("textual", "huey", "aiosqlite"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "load average at start": load,
    }


# ---------------------------------------------------------------------- processes


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python process that can import ``bench`` and the engine."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("OPERATOR_APPROVAL_MODE", None)
    env.update(extra)
    return env


def settle() -> None:
    """Write every dirty page to disk now, before a measurement: the files the previous one
    wrote (or the history databases just copied, about 160 MB) would otherwise be written
    back during the next, whose own writes then wait behind them (SQLite statements on the
    runner's loop were seen taking 30 to 300 ms at such moments)."""
    os.sync()


def compile_bytecode() -> None:
    """Write the bytecode of the installed libraries and of this repository, once, before any
    timed start-up: a real installation has it (pip writes it at install time, Python on
    first import), but uv installs without it and ``PYTHONDONTWRITEBYTECODE`` stops Python
    from caching it, which made every measured start compile Textual, Rich and pydantic from
    source (about 0.3 s of the 0.5 s an empty Textual app took)."""
    paths = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    paths |= {str(REPO / name) for name in ("core", "tui", "bench")}
    for path in sorted(paths):
        compileall.compile_dir(path, quiet=2, workers=0)


def spawn_runner(
    db: Path,
    log: IO[bytes],
    *,
    concurrency: int = 4,
    until_idle: bool = False,
    synchronous: str = "NORMAL",
) -> subprocess.Popen[bytes]:
    """``operator --db DB --subject bench.subjects:NoopSubject run``, a real separate process."""
    args = [
        sys.executable,
        "-m",
        "operator_core.cli",
        "--db",
        str(db),
        "--subject",
        NOOP_SUBJECT,
        "run",
        "--concurrency",
        str(concurrency),
        # No line per attempt: Huey's consumer, its peer here, runs with no log handler.
        "-q",
    ]
    if until_idle:
        args.append("--until-idle")
    return subprocess.Popen(
        args,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=child_env(OPERATOR_SQLITE_SYNCHRONOUS=synchronous),
    )


@contextlib.contextmanager
def runner_process(workdir: Path, db: Path, **options: Any) -> Iterator[None]:
    """An idle ``operator run`` on ``db`` (log in ``workdir``), listening when entered and
    stopped when left."""
    with open(workdir / "runner.log", "ab") as log, running(spawn_runner(db, log, **options)):
        wait_listening(db)
        yield


def wait_listening(db: Path, timeout: float = 30.0) -> None:
    """Wait until a runner has registered its wake-up socket next to the database."""
    listeners = db.with_name(db.name + ".listeners")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if os.listdir(listeners):
                return
        time.sleep(0.02)
    raise RuntimeError(f"no runner started listening on {db} within {timeout:g}s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield proc
    finally:
        stop(proc)


# ---------------------------------------------------------------------- the database


def reader(db: Path) -> sqlite3.Connection:
    """A plain read connection for polling what the runner wrote (never writes)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def db_time(value: str) -> float:
    """A stored UTC timestamp as POSIX seconds."""
    return datetime.strptime(value, DB_TIME_FORMAT).replace(tzinfo=UTC).timestamp()


@contextlib.contextmanager
def env_var(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
