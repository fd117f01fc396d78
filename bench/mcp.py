"""The agent gateway: a ``propose_action`` round trip over MCP stdio (a real client
session talking to ``operator mcp`` in a subprocess), beside the process time of
``operator propose`` for the same proposal, which is what an agent paid before."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import NOOP_SUBJECT, Figure, child_env, median, percentile, settle

MS = 1000.0


def _argv(db: Path) -> list[str]:
    return [sys.executable, "-m", "operator_core.cli", "--db", str(db), "--subject", NOOP_SUBJECT]


async def _round_trips(db: Path, calls: int) -> list[float]:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    argv = [*_argv(db), "mcp", "--agent", "bench"]
    params = StdioServerParameters(
        command=argv[0], args=argv[1:], env=child_env(OPERATOR_APPROVAL_MODE="on")
    )
    arguments = {"action": "noop", "parameters": {}, "reason": "bench"}
    times: list[float] = []
    with (db.parent / "mcp.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await session.call_tool("propose_action", arguments)  # warm: first-call imports
            for _ in range(calls):
                start = time.perf_counter()
                result = await session.call_tool("propose_action", arguments)
                times.append(time.perf_counter() - start)
                if result.is_error:
                    raise RuntimeError(f"propose_action failed: {result.content}")
    return times


def _cli_propose(db: Path) -> float:
    argv = [*_argv(db), "propose", "noop", "--reason", "bench"]
    start = time.perf_counter()
    subprocess.run(
        argv,
        env=child_env(OPERATOR_APPROVAL_MODE="on"),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def bench(runs: int, quick: bool, log: Callable[[str], None] = print) -> list[Figure]:
    calls = 50 if quick else 500
    processes = 3 if quick else 7
    p50 = Figure(
        f"mcp: propose_action round trip over stdio, {calls} calls",
        "p50",
        "ms",
        peer=[],
        peer_label="operator propose (process)",
    )
    p99 = Figure(
        p50.bench,
        "p99",
        "ms",
        peer=[],
        peer_label=p50.peer_label,
        target="p99 ≤ 20 ms",
        meets=lambda v: v <= 20,
    )
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
            db = Path(tmp) / "mcp.db"
            settle()
            ours = asyncio.run(_round_trips(db, calls))
            settle()
            cli = median([_cli_propose(db) for _ in range(processes)]) * MS
            for fig, q in ((p50, 50), (p99, 99)):
                fig.ours.append(percentile(ours, q) * MS)
                assert fig.peer is not None
                fig.peer.append(cli)
            log(
                f"  run {i + 1}/{runs}: propose_action p50 {p50.ours[-1]:.2f} ms, "
                f"p99 {p99.ours[-1]:.2f} ms; operator propose {cli:.0f} ms"
            )
    return [p50, p99]
