"""Which process group an attempt's command runs in, and ending one left by a lost runner.

A command runs under a supervisor (``supervisor.py``) that leads its process group, so the
group's id is the supervisor's pid. The attempt record keeps the host, the command's pid, the
group and a start token of the group's leader: ``BOOT_ID:TICKS`` on Linux, the boot's id and
the leader's start time in clock ticks from /proc/PID/stat. Pids are reused (pid_max is often
32768); the token tells the group that was recorded from a later one with the same number.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from functools import cache
from typing import NamedTuple

from operator_core.subjects.supervisor import group_members, proc_stat


@cache
def host_name() -> str:
    return socket.gethostname()


@cache
def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def start_token(pid: int) -> str | None:
    """``BOOT_ID:TICKS`` for a live process; None where /proc cannot tell (not Linux)."""
    boot = _boot_id()
    fields = proc_stat(pid)
    if boot is None or fields is None or len(fields) < 20:
        return None
    return f"{boot}:{fields[19]}"


class GroupCheck(NamedTuple):
    """What this host can say about a recorded process group."""

    members: list[int]  # the recorded group's live processes (empty: it is gone)
    verified: bool  # False: this host cannot tell (no /proc, another boot's token, ...)


def check_group(pgid: int, start: str | None) -> GroupCheck:
    """The live processes of the recorded group, if they are verifiably that group.

    The leader alive with the recorded token: its group. The leader alive with another
    token: the pid was reused, so the recorded group had emptied first (the kernel does not
    hand out a pid that is still a group's id): gone. The leader dead: the processes left in
    its group, in its session, started no earlier than the leader (a later group with the
    same id would need the leader's pid to be reused and then to die in turn)."""
    boot = _boot_id()
    if start is None or boot is None or not start.startswith(boot + ":"):
        if start is not None and boot is not None:
            return GroupCheck([], True)  # another boot: nothing of that group survives
        return GroupCheck([], False)
    ticks = int(start.rpartition(":")[2])
    leader = proc_stat(pgid)
    if leader is not None and leader[0] != "Z":
        if start_token(pgid) != start:
            return GroupCheck([], True)
        return GroupCheck(group_members(pgid), True)
    members = []
    for pid in group_members(pgid):
        fields = proc_stat(pid)
        if fields is not None and fields[3] == str(pgid) and int(fields[19]) >= ticks:
            members.append(pid)
    return GroupCheck(members, True)


async def end_group(pgid: int, start: str | None, grace: float) -> GroupCheck:
    """End a verified group: SIGTERM, up to ``grace`` seconds to go, then SIGKILL, then wait
    (briefly) until it is gone. Returns what was found before; signals only a group whose
    identity was verified, and checks it again before the SIGKILL."""
    found = check_group(pgid, start)
    if not found.verified or not found.members:
        return found
    _signal_group(pgid, signal.SIGTERM)
    if not await _until_gone(pgid, start, grace):
        _signal_group(pgid, signal.SIGKILL)
        await _until_gone(pgid, start, 1.0)
    return found


async def _until_gone(pgid: int, start: str | None, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if not check_group(pgid, start).members:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(0.02, remaining))


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def settle_lost_group(
    host: str, pgid: int, start: str | None, grace: float
) -> tuple[str, bool]:
    """Before a lost attempt is retried: end its process group if it runs on this host.
    Returns what was found, for the record, and whether the action may run again (not while
    the group may still be running here)."""
    here = host_name()
    if host != here:
        # Not checkable from here. Its supervisor ended it when the runner died, on its own
        # host and without the database: the lease has expired, so the retry goes ahead.
        return (
            f"runner lost on host {host}; its process group {pgid} could not be checked "
            f"from host {here} (its supervisor ends the group when the runner dies)",
            True,
        )
    found = await end_group(pgid, start, grace)
    if not found.verified:
        return f"its process group {pgid} could not be checked on {here} (no /proc)", True
    if not found.members:
        return f"its process group {pgid} had already ended", True
    if check_group(pgid, start).members:
        return (
            f"its process group {pgid} on {here} is still running and could not be ended; "
            "not retried, so that it never runs twice at once",
            False,
        )
    return f"its process group {pgid} ({len(found.members)} processes) was ended by {here}", True
