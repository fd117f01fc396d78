"""The PostgreSQL peer: procrastinate with a no-op task, and its worker as a process.

python -m bench.procrastinate_app drain URL [--concurrency C]   run until the queue is empty
python -m bench.procrastinate_app serve URL [--concurrency C]   run until SIGINT/SIGTERM

The bench process (which defers) and the worker processes share ``make_app``. The worker
runs with procrastinate's defaults otherwise: LISTEN/NOTIFY on, a poll every 5 s as the
fallback. Timestamps come from procrastinate's own ``procrastinate_events`` rows (the
server's ``now()`` of the defer and of the fetch), so the task bodies do nothing at all.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import procrastinate


def make_app(url: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop() -> None:
        """Does nothing."""

    return app


async def _work(url: str, concurrency: int, wait: bool) -> None:
    app = make_app(url)
    async with app.open_async():
        if wait:
            print("ready", flush=True)
        await app.run_worker_async(concurrency=concurrency, wait=wait)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.procrastinate_app")
    parser.add_argument("mode", choices=["drain", "serve"])
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    # No line per job: our runner runs with -q, and a log line per job is not the queue.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(_work(args.url, args.concurrency, wait=args.mode == "serve"))


if __name__ == "__main__":
    main()
