"""Huey's consumer as a separate process (thread workers), the peer of ``operator run``.

python -m bench.huey_consumer drain N --db F [--workers W]   run until N tasks ran, print JSON
python -m bench.huey_consumer serve --db F [--workers W]    run until SIGINT/SIGTERM
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time

from huey.consumer import Consumer

from bench import huey_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.huey_consumer")
    parser.add_argument("mode", choices=["drain", "serve"])
    parser.add_argument("count", nargs="?", type=int, default=0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--db", required=True)
    parser.add_argument("--synchronous", default="NORMAL")
    args = parser.parse_args()
    huey_app.configure(args.db, args.synchronous)
    consumer = Consumer(
        huey_app.huey,
        workers=args.workers,
        worker_type="thread",
        periodic=False,
        check_worker_health=False,
    )
    if args.mode == "drain":
        huey_app.target = args.count
        started = time.time()
        consumer.start()
        result = huey_app.wait_drained()
        consumer.stop(graceful=True)
        print(json.dumps({**result, "consumer_started": started}), flush=True)
        return
    stopped = threading.Event()
    consumer.start()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    print("ready", flush=True)
    stopped.wait()
    consumer.stop(graceful=True)


if __name__ == "__main__":
    main()
