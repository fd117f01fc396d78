"""``python -m bench [NAME|all] [--quick] [--runs N]`` (the names: ``BENCHES`` below)

Runs the benchmarks, prints one report (the machine, then every figure as
``median [min..max]`` over the runs, with the peer measured in the same run and the ratio
ours/peer per run) and writes it to ``bench/results/latest.md``. Figures only: nothing here
asserts on time.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Figure, machine, summary

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"
# Each benchmark's name and its module in bench/ (each has ``bench(runs, quick, log=...)``).
BENCHES = {
    "throughput": "throughput",
    "latency": "latency",
    "dashboard": "dashboard",
    "dashboard_pg": "dashboard_pg",
    "history_view": "history_view",
    "audit_view": "audit_view",
    "cli": "cli_start",
    "automations": "automations",
    "mcp": "mcp",
    "pg": "pg",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(names: list[str], runs: int, quick: bool, concurrency: int) -> list[Figure]:
    figures: list[Figure] = []
    for name in names:
        log(f"== {name} ({runs} run{'s' if runs != 1 else ''}{', quick' if quick else ''})")
        start = time.monotonic()
        module = importlib.import_module(f"bench.{BENCHES[name]}")
        if name == "throughput":
            figures += module.bench(runs, quick, concurrency=concurrency, log=log)
        else:
            figures += module.bench(runs, quick, log=log)
        log(f"   {name} took {time.monotonic() - start:.0f} s")
    return figures


def render(
    figures: list[Figure],
    info: dict[str, str],
    runs: int,
    quick: bool,
    elapsed: float,
    command: str,
) -> str:
    lines = [
        "# Operator benchmark report",
        "",
        f"`{command}` — {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"{runs} run{'s' if runs != 1 else ''} per figure{' (quick sizes)' if quick else ''}, "
        f"{elapsed / 60:.1f} min in all.",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()) + ".",
        "",
        "Each cell is the median [min..max] over the runs. The peer (Huey, or the naive "
        "DataTable) ran in the same run; the ratio is ours/peer computed per run "
        "(for rates, above 1 is better for us; for times and sizes, below 1 is).",
        "",
    ]
    group = None
    for f in figures:
        if f.bench != group:
            group = f.bench
            lines += [
                "",
                f"### {group}",
                "",
                "| figure | ours | peer | ours/peer | target | |",
                "|---|---|---|---|---|---|",
            ]
        peer = f"{f.peer_label} {summary(f.peer)}" if f.peer else ""
        ratio = f"{summary(f.ratios)}x" if f.ratios else ""
        lines.append(
            f"| {f.name} ({f.unit}) | {summary(f.ours)} | {peer} | {ratio} | "
            f"{f.target} | {f.verdict()} |"
        )
    judged = [f for f in figures if f.verdict()]
    if judged:
        lines += ["", "### Targets", ""]
        for f in judged:
            what = "ratio" if f.judge_ratio else "median"
            lines.append(
                f"- {f.verdict()}: {f.bench} — {f.name}: {f.target} "
                f"({what} {summary(f.ratios if f.judge_ratio else f.ours)})"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("which", nargs="?", default="all", choices=[*BENCHES, "all"])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and 1 run: a smoke test, not figures to quote",
    )
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 5)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="runner concurrency and Huey worker threads (throughput)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help=f"where the report goes as well (default {RESULTS})",
    )
    args = parser.parse_args(argv)
    runs = args.runs if args.runs is not None else (1 if args.quick else 5)
    names = list(BENCHES) if args.which == "all" else [args.which]
    info = machine()
    log("machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()))
    start = time.monotonic()
    figures = run(names, runs, args.quick, args.concurrency)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    report = render(figures, info, runs, args.quick, time.monotonic() - start, command.strip())
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    log(f"report written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
