"""The dashboard on a database with 0, 10,000 and 100,000 actions of history.

Each dashboard is a fresh process in a pseudo-terminal (120x36, TERM=xterm-256color, its
output read and discarded as a terminal would), so start-up, imports and real terminal
writes all count (with the libraries' bytecode already written, as in any installation):

- first paint: process start (just before ``exec``) → the terminal has received the whole
  first frame with data: the dashboard says what it shows (``bench/dashboard_app.py``: the
  approvals pane's title with its count) and how many bytes it had written by the end of
  that frame; the bench checks the text is in those bytes and times when the last of them
  arrived on the pseudo-terminal (before 2026-12-03, when the title's bytes arrived: the
  same frame, from 0 to about 10 ms earlier on a loaded machine);
- external change: another process (this one) approves the action at the top of the
  approvals pane through ``ActionExecutor``; from its ``approved_at`` to the frame in which
  the row has left the pane;
- idle CPU: user + system CPU seconds of the dashboard process over 20 s with nothing
  changing (the three dashboards of a run sit idle at the same time);
- peak RSS: the process's own high-water mark (`VmHWM`), read just before it quits.

The naive baseline (a Textual ``DataTable`` filled with every row of ``action_proposals``)
is measured the same way in the same run, for first paint and peak RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    Figure,
    child_env,
    compile_bytecode,
    db_time,
    reader,
    settle,
)
from bench.history import cached_history, history_db

SIZES = (0, 10_000, 100_000)
_LAUNCHED: list[Dashboard] = []


def _kill_leftovers() -> None:
    """A run that failed halfway must not leave dashboards behind: with their terminal gone
    (no controlling tty, so no SIGHUP) they would spin and skew every later figure."""
    for dash in _LAUNCHED:
        if dash.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(dash.proc.pid, signal.SIGKILL)
            dash.proc.wait()
    _LAUNCHED.clear()


COLS, ROWS = 120, 36
SCREEN_KEPT = 4 << 20


@dataclass
class Dashboard:
    """One dashboard process in its own pseudo-terminal."""

    proc: subprocess.Popen[bytes]
    started: float
    master: int
    report_fd: int
    events: list[dict[str, Any]] = field(default_factory=list)
    _buf: bytes = b""
    _drain: threading.Thread | None = None
    _screen: bytearray = field(default_factory=bytearray)
    """What the terminal received (the first ``SCREEN_KEPT`` bytes)."""
    _arrivals: list[tuple[float, int]] = field(default_factory=list)
    """(time read, length of ``_screen`` after it) per chunk kept."""

    @classmethod
    def launch(cls, mode: str, db: Path | str) -> Dashboard:
        """``db``: a SQLite file, or a PostgreSQL URL (``bench/dashboard_pg.py``)."""
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        read_end, write_end = os.pipe()
        env = child_env(
            TERM="xterm-256color",
            BENCH_REPORT_FD=str(write_end),
            COLUMNS=str(COLS),
            LINES=str(ROWS),
        )
        for name in [k for k in env if k.startswith("TEXTUAL")]:
            del env[name]
        started = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.dashboard_app", mode, str(db)],
            cwd=REPO,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            pass_fds=(write_end,),
            start_new_session=True,
        )
        os.close(slave)
        os.close(write_end)
        dash = cls(proc, started, master, read_end)
        _LAUNCHED.append(dash)
        dash._drain = threading.Thread(target=dash._discard_output, daemon=True)
        dash._drain.start()
        return dash

    def _discard_output(self) -> None:
        """Read the terminal's output as a terminal would; keep its start, timed."""
        with contextlib.suppress(OSError):
            while chunk := os.read(self.master, 65536):
                if len(self._screen) < SCREEN_KEPT:
                    self._screen += chunk
                    self._arrivals.append((time.time(), len(self._screen)))

    def received(self, text: str, timeout: float = 10.0) -> float:
        """When the terminal had received ``text`` (the time the chunk that completed its
        first occurrence was read)."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while (at := self._screen.find(wanted)) < 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the terminal never received {text!r}")
            time.sleep(0.01)
        end = at + len(wanted)
        return next(t for t, length in list(self._arrivals) if length >= end)

    def painted(self, event: dict[str, Any]) -> float:
        """When the terminal had received the whole frame a ``paint`` report speaks of: the
        text it shows, and every byte written up to the end of that frame."""
        shown = self.received(event["shows"])
        at = self._screen.find(event["shows"].encode())
        if at + len(event["shows"].encode()) > event["written"]:
            raise RuntimeError(f"{event['shows']!r} is not in the frame the report speaks of")
        deadline = time.monotonic() + 10.0
        while len(self._screen) < event["written"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the terminal never received the whole first frame")
            time.sleep(0.01)
        end = next(t for t, length in list(self._arrivals) if length >= event["written"])
        return max(shown, end)

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event["event"] == name:
                    return event
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and not self._readable(0):
                raise RuntimeError(
                    f"dashboard never reported {name!r} (exit code {self.proc.poll()})"
                )
            if self._readable(min(left, 0.5)):
                chunk = os.read(self.report_fd, 65536)
                if not chunk:
                    raise RuntimeError(
                        f"dashboard exited (code {self.proc.wait()}) before reporting {name!r}"
                    )
                self._buf += chunk
                *lines, self._buf = self._buf.split(b"\n")
                self.events += [json.loads(line) for line in lines if line.strip()]

    def _readable(self, timeout: float) -> bool:
        return bool(select.select([self.report_fd], [], [], timeout)[0])

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss(self) -> float:
        """The process's own peak resident memory (VmHWM, MiB). Not ``ru_maxrss`` from
        ``wait4``: Linux carries the forking parent's peak over into the child across
        ``exec``, so a child of a large bench process would report the parent's size."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")

    def quit(self, timeout: float = 10.0) -> float:
        """Press q (SIGTERM, then SIGKILL, if it does not go); peak RSS in MiB, read just
        before."""
        peak = self.peak_rss()
        with contextlib.suppress(OSError):
            os.write(self.master, b"q")
        deadline = time.monotonic() + timeout
        rusage = None
        while rusage is None:
            pid, _, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                rusage = usage
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                deadline = time.monotonic() + timeout
            time.sleep(0.02)
        self.proc.returncode = 0
        for fd in (self.master, self.report_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        return peak


async def _approve(db: Path, key: str) -> float:
    """Approve the action or workflow behind a pane row key (``p<id>``, ``w<id>``) from this
    process; its ``approved_at``."""
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry
    from operator_core.subjects.loader import load_subject

    # The fixture's actions are the demo's: an approval binds what runs, so the approver
    # loads the subject that offers them.
    kind, item = key[0], int(key[1:])
    async with ActionExecutor(db, ActionRegistry.from_subject(load_subject("demo"))) as ex:
        if kind == "w":
            await ex.approve_workflow(item, "bench@other-process")
        else:
            await ex.approve_proposal(item, "bench@other-process")
    table = "workflows" if kind == "w" else "action_proposals"
    conn = reader(db)
    try:
        approved = conn.execute(
            f"SELECT approved_at FROM {table} WHERE id = ?", (item,)
        ).fetchone()[0]
    finally:
        conn.close()
    return db_time(approved)


def bench(runs: int, quick: bool, log=print) -> list[Figure]:
    sizes = (0, 10_000) if quick else SIZES
    idle_seconds = 3.0 if quick else 20.0
    figures: dict[tuple[str, int], Figure] = {}

    def fig(name: str, n: int, unit: str, **kw: Any) -> Figure:
        key = (name, n)
        if key not in figures:
            group = f"dashboard, {n:,} actions" if n >= 0 else "dashboard, reference"
            figures[key] = Figure(group, name, unit, **kw)
        return figures[key]

    big = max(sizes)
    compile_bytecode()  # outside any timing, as an installation would have it
    try:
        _measure(runs, sizes, big, idle_seconds, fig, log)
    finally:
        _kill_leftovers()
    order = [
        "first paint of an empty Textual app (the floor on this machine)",
        "first paint (process start → data on screen)",
        "external approval → row gone from the pane",
        "idle CPU per 20 s",
        "peak RSS",
    ]
    return [figures[(name, n)] for n in (-1, *sizes) for name in order if (name, n) in figures]


def _measure(
    runs: int, sizes: tuple[int, ...], big: int, idle_seconds: float, fig: Any, log: Any
) -> None:
    ms = 1000.0
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        for size in sizes:
            cached_history(size)  # generated once, outside any timing
        for i in range(runs):
            dbs = {n: history_db(n, Path(tmp)) for n in sizes}
            settle()
            live = {}
            empty = Dashboard.launch("empty", Path("-"))
            floor = empty.wait_event("paint", 60)
            fig(
                "first paint of an empty Textual app (the floor on this machine)", -1, "ms"
            ).ours.append((empty.painted(floor) - empty.started) * ms)
            empty.quit()
            for n in sizes:
                paint_fig = fig(
                    "first paint (process start → data on screen)",
                    n,
                    "ms",
                    peer=[],
                    peer_label="naive",
                    target="≤ 500 ms" if n == big else "",
                    meets=(lambda v: v <= 500) if n == big else None,
                )
                dash = Dashboard.launch("operator", dbs[n])
                paint = dash.wait_event("paint", 120)
                naive = Dashboard.launch("naive", dbs[n])
                naive_paint = naive.wait_event("paint", 300)
                naive_rss = naive.quit()
                paint_fig.ours.append((dash.painted(paint) - dash.started) * ms)
                assert paint_fig.peer is not None
                paint_fig.peer.append((naive.painted(naive_paint) - naive.started) * ms)
                rss_fig = fig(
                    "peak RSS",
                    n,
                    "MiB",
                    peer=[],
                    peer_label="naive",
                    target="≤ 80 MiB" if n == big else "",
                    meets=(lambda v: v <= 80) if n == big else None,
                )
                assert rss_fig.peer is not None
                rss_fig.peer.append(naive_rss)
                change = fig(
                    "external approval → row gone from the pane",
                    n,
                    "ms",
                    target="≤ 1000 ms (aim 250)" if n == big else "",
                    meets=(lambda v: v <= 1000) if n == big else None,
                )
                if paint.get("first"):
                    time.sleep(0.5)
                    approved = asyncio.run(_approve(dbs[n], paint["first"]))
                    gone = dash.wait_event("gone", 30)
                    change.ours.append((gone["t"] - approved) * ms)
                live[n] = dash
                log(
                    f"  run {i + 1}/{runs}, {n:,} actions: first paint "
                    f"{paint_fig.ours[-1]:.0f} ms (naive {paint_fig.peer[-1]:.0f} ms), "
                    f"change shown {change.ours[-1] if change.ours else float('nan'):.0f} ms"
                )
            time.sleep(1.0)
            before = {n: d.cpu_seconds() for n, d in live.items()}
            time.sleep(idle_seconds)
            for n, dash in live.items():
                used = (dash.cpu_seconds() - before[n]) * 20.0 / idle_seconds
                fig(
                    "idle CPU per 20 s",
                    n,
                    "s",
                    target="≤ 0.1 s" if n == big else "",
                    meets=(lambda v: v <= 0.1) if n == big else None,
                ).ours.append(used)
                fig("peak RSS", n, "MiB").ours.append(dash.quit())
            log(
                f"  run {i + 1}/{runs}: idle CPU "
                + ", ".join(
                    f"{n:,}: {fig('idle CPU per 20 s', n, 's').ours[-1]:.2f} s" for n in sizes
                )
            )
            for path in dbs.values():
                for leftover in path.parent.glob(path.name + "*"):
                    if leftover.is_file():
                        leftover.unlink()
