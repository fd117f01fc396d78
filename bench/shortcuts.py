"""``python -m bench.shortcuts [--quick] [--rounds N] [--tree DIR]``: what each speed
shortcut of the engine buys end to end.

Each shortcut kept has a plain form (below, ``PLAIN``; those removed, and why, are in
docs/performance.md). One measurement is what
``bench.throughput`` measures for ours: N no-op actions proposed one by one, then run by a
separate ``operator run --until-idle``; end-to-end is N / (propose time + execute window).
Every measurement runs in fresh processes with one shortcut replaced by its plain form (or
none: all shortcuts on), the variants interleaved in each round (mirrored every other
round), several rounds in one run; the report gives medians, of the wall-clock rates and of
actions per CPU second (the proposing process's, and the runner's from its first claim to
its last recorded batch: steadier than the wall clock on a shared machine).
``--tree DIR`` adds the variant "before": another checkout's engine (e.g. ``git archive``
of the commit before a change), all its shortcuts on, measured in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import NOOP_SUBJECT, REPO, child_env, db_time, reader, settle


def _plain_json() -> None:
    from operator_core.db import encode

    encode._C_ENCODE = None  # dumps() then goes through json.JSONEncoder.encode


def _plain_pydantic() -> None:
    from operator_core.db import proposals, rows

    def trusted(cls: Any, values: dict[str, Any], shape: Any = None) -> Any:
        return cls.model_construct(**values)

    def with_id(p: Any, new_id: int) -> Any:
        return p.model_copy(update={"id": new_id})

    rows.trusted = trusted
    rows.with_id = with_id
    proposals.with_id = with_id


def _plain_fast_path() -> None:
    from operator_core.db.connection import Store

    # Never idle: every transaction and data_version goes through aiosqlite's worker thread.
    Store._worker_idle = property(lambda self: False)  # type: ignore[assignment,method-assign]


PLAIN = {
    "json": ("CPython's C JSON encoder called directly (encode.py)", _plain_json),
    "pydantic": ("models built by filling pydantic's slots (rows.py)", _plain_pydantic),
    "fast_path": (
        "transactions on the loop's thread, not aiosqlite's (connection.py)",
        _plain_fast_path,
    ),
}


def apply(name: str) -> None:
    if name != "none":
        PLAIN[name][1]()


def _count_runner_cpu() -> list[float]:
    """Note the CPU time of the runner's first claim and of its last recorded batch: its
    window of work (start-up, opening and checking the database, and the wait to see it
    idle are the same for every variant)."""
    marks: list[float] = []
    try:
        from operator_core.db import attempts, runner_cycle

        modules: list[Any] = [runner_cycle, attempts]
        name = "finish_and_claim_tx"
    except ImportError:  # an engine from before db/ was split
        from operator_core.db import actions

        modules, name = [actions], "_finish_and_claim_tx"
    cycle = getattr(modules[0], name)

    def noted(conn: Any, runner_id: str, finished: Any, *args: Any) -> Any:
        claims = cycle(conn, runner_id, finished, *args)
        if (claims and not marks) or (finished and marks):
            marks[1:] = []
            marks.append(time.process_time())
        return claims

    for module in modules:
        setattr(module, name, noted)
    return marks


def _runner_main(name: str, args: list[str]) -> None:
    """``python -m operator_core.cli ARGS`` with the shortcut ``name`` in its plain form;
    writes the CPU time of its window of work to $BENCH_CPU_FILE."""
    apply(name)
    marks = _count_runner_cpu()
    sys.argv = ["operator", *args]
    try:
        runpy.run_module("operator_core.cli", run_name="__main__", alter_sys=True)
    finally:
        spent = marks[-1] - marks[0] if len(marks) > 1 else 0.0
        Path(os.environ["BENCH_CPU_FILE"]).write_text(str(spent))


async def _propose(db: Path, n: int) -> tuple[float, float]:
    from operator_core.actions.executor import ActionExecutor
    from operator_core.actions.registry import ActionRegistry

    from bench.subjects import NoopSubject

    executor = ActionExecutor(db, ActionRegistry.from_subject(NoopSubject()), approval_mode=False)
    async with executor as ex:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            await ex.propose_action("noop", {}, reason=f"shortcuts {i}")
        return time.perf_counter() - start, time.process_time() - cpu


def _measure_main(name: str, n: int, workdir: Path) -> None:
    """One measurement, in this (fresh) process and a runner process; prints JSON."""
    import asyncio

    apply(name)
    db = workdir / f"{name}.db"
    settle()
    propose_s, propose_cpu = asyncio.run(_propose(db, n))
    cpu_file = workdir / "runner.cpu"
    args = ["--db", str(db), "--subject", NOOP_SUBJECT, "run", "--concurrency", "4"]
    with open(workdir / "runner.log", "ab") as log:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.shortcuts",
                "--runner",
                name,
                "--",
                *args,
                "--until-idle",
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(BENCH_CPU_FILE=str(cpu_file)),
            timeout=600,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"runner failed; see {workdir / 'runner.log'}")
    conn = reader(db)
    try:
        first, last, done = conn.execute(
            "SELECT MIN(started_at), MAX(completed_at), SUM(success = 1) FROM action_records"
        ).fetchone()
    finally:
        conn.close()
    if done != n:
        raise RuntimeError(f"expected {n} completed actions, got {done}")
    execute_s = db_time(last) - db_time(first)
    runner_cpu = float(cpu_file.read_text())
    print(
        json.dumps(
            {
                "propose_s": propose_s,
                "execute_s": execute_s,
                "n": n,
                "cpu_s": propose_cpu + runner_cpu,
                "propose_cpu_us": propose_cpu / n * 1e6,
                "runner_cpu_us": runner_cpu / n * 1e6,
            }
        )
    )


def measure(name: str, n: int, tree: str | None) -> dict[str, float]:
    env = child_env()
    if name == "before":
        assert tree is not None
        name = "none"
        roots = [str(Path(tree) / "core"), str(Path(tree) / "tui")]
        env["PYTHONPATH"] = os.pathsep.join([*roots, env["PYTHONPATH"]])
    with tempfile.TemporaryDirectory(prefix="bench-shortcuts-") as tmp:
        out = subprocess.run(
            [sys.executable, "-m", "bench.shortcuts", "--measure", name, "--n", str(n)]
            + ["--workdir", tmp],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    run = json.loads(out.stdout.strip().splitlines()[-1])
    run["e2e"] = run["n"] / (run["propose_s"] + run["execute_s"])
    run["propose"] = run["n"] / run["propose_s"]
    run["execute"] = run["n"] / run["execute_s"]
    run["cpu"] = run["n"] / run["cpu_s"]
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--tree", default=None)
    parser.add_argument("--measure", default=None)
    parser.add_argument("--runner", default=None)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("rest", nargs="*")
    opts = parser.parse_args()
    if opts.runner:
        _runner_main(opts.runner, opts.rest)
        return
    n = opts.n or (300 if opts.quick else 1000)
    if opts.measure:
        _measure_main(opts.measure, n, Path(opts.workdir))
        return
    names = opts.only if opts.only is not None else ["none", *PLAIN]
    if opts.tree:
        names.append("before")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for r in range(opts.rounds):
        order = names if r % 2 == 0 else list(reversed(names))
        for name in order:
            run = measure(name, n, opts.tree)
            results[name].append(run)
            print(
                f"round {r + 1} {name:10} e2e {run['e2e']:7.0f}/s  propose "
                f"{run['propose']:7.0f}/s  execute {run['execute']:7.0f}/s  "
                f"per CPU second {run['cpu']:7.0f} (CPU µs per action: propose "
                f"{run['propose_cpu_us']:.0f}, run {run['runner_cpu_us']:.0f})",
                file=sys.stderr,
                flush=True,
            )

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in results[name])

    print(f"\n{n:,} no-op actions, {opts.rounds} rounds, medians (actions/s)")
    print(
        "| shortcut replaced by its plain form | end-to-end | propose | execute "
        "| shortcut buys (wall) | per CPU second | shortcut buys (CPU) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        e2e, prop, exe, cpu = (med(name, k) for k in ("e2e", "propose", "execute", "cpu"))
        label = (
            "none (every shortcut on)"
            if name == "none"
            else "before: the --tree checkout"
            if name == "before"
            else f"{name}: {PLAIN[name][0]}"
        )
        buys = buys_cpu = ""
        if "none" in results and name != "none":
            buys = f"{med('none', 'e2e') / e2e - 1:+.1%}"
            buys_cpu = f"{med('none', 'cpu') / cpu - 1:+.1%}"
        print(f"| {label} | {e2e:.0f} | {prop:.0f} | {exe:.0f} | {buys} | {cpu:.0f} | {buys_cpu} |")


if __name__ == "__main__":
    main()
