"""PostgreSQL: our propose against procrastinate's defer, alternating in one process.

``python -m bench.pg_propose [--rounds R] [--batch B]``: one fresh database on the bench's
server (``bench.pg.server``: ``$BENCH_PG_URL`` or a throwaway cluster), one executor with
approval off (``bench.pg._executor``) and one procrastinate app on it. Then R rounds, each
B proposals one by one (``propose_action``, its audit event chained) and B defers one by
one (``defer_async``), the side that goes first alternating: the two sides see the same
machine, load and server, so their ratio holds on a shared machine where the rates do not.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.pg import _executor, fresh_db, server


async def alternate(url: str, rounds: int, batch: int) -> tuple[float, float]:
    """Seconds spent proposing and deferring, ``rounds * batch`` of each."""
    from bench.procrastinate_app import make_app

    app = make_app(url)
    async with app.open_async(), _executor(url, approval_mode=False) as ex:
        await app.schema_manager.apply_schema_async()
        task = app.tasks["noop"]
        for i in range(30):  # warm both: connections, prepared statements
            await ex.propose_action("noop", {}, reason=f"warm {i}")
            await task.defer_async()
        ours = peer = 0.0
        for r in range(rounds):
            for side in ("ours", "peer") if r % 2 == 0 else ("peer", "ours"):
                start = time.perf_counter()
                if side == "ours":
                    for i in range(batch):
                        await ex.propose_action("noop", {}, reason=f"round {r} item {i}")
                    ours += time.perf_counter() - start
                else:
                    for _ in range(batch):
                        await task.defer_async()
                    peer += time.perf_counter() - start
    return ours, peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--batch", type=int, default=250)
    args = parser.parse_args()
    n = args.rounds * args.batch
    with server() as admin, fresh_db(admin) as url:
        ours, peer = asyncio.run(alternate(url, args.rounds, args.batch))
    print(f"propose {n / ours:.0f}/s, defer {n / peer:.0f}/s: propose/defer {peer / ours:.2f}x")


if __name__ == "__main__":
    main()
