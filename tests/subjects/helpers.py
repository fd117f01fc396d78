"""Helpers shared by the runbook subject tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from operator_core.actions.executor import ActionExecutor
from operator_core.actions.registry import ActionRegistry
from operator_core.model.types import ActionProposal, ActionStatus
from operator_core.runner import Runner
from operator_core.subjects.base import Subject

TERMINAL = (ActionStatus.COMPLETED, ActionStatus.FAILED, ActionStatus.CANCELLED)


def engine(db_path: Path, subject: Subject) -> ActionExecutor:
    return ActionExecutor(db_path, ActionRegistry.from_subject(subject), approval_mode=False)


async def run_until_settled(
    executor: ActionExecutor, proposal_id: int, timeout: float = 10.0
) -> ActionProposal:
    """Run the real runner (until idle, again after each retry wait) until the action is
    completed, failed for good or cancelled."""
    deadline = time.monotonic() + timeout
    while True:
        await Runner(executor, poll_interval=0.05, grace_seconds=1.0).run(until_idle=True)
        p = await executor.db.get_proposal(proposal_id)
        assert p is not None
        if p.status in TERMINAL and not p.is_retry_waiting:
            return p
        assert time.monotonic() < deadline, f"action still {p.status} after {timeout}s"
        await asyncio.sleep(0.05)


def live_in_group(pgid: int) -> list[int]:
    """Pids of live (not zombie) processes in a process group."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[2] == str(pgid) and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def is_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


async def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)
    return path.read_text()
