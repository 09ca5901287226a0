"""The floor under vpsweb's orchestration: the same canvas shape with no-op tasks.

Run: .venv/bin/python bench/raw_celery_canvas.py [--n 3] [--runs 10] [--jobs 200] [--procs 1]
Starts a private redis-server and threads-pool workers with vpsweb's Celery settings
(vpsweb.bench.raw_canvas), then times chain(chord([noop] * N, noop), noop x 4), one
canvas at a time from send to the last task, and the rate ``--jobs`` canvases sent at
once are completed. Whatever vpsweb adds per job comes on top of this; `vpsweb bench`
measures the rate beside vpsweb's in the same run (scenario "capacity").
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from vpsweb.bench import raw_canvas
from vpsweb.local.processes import RedisServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--procs", type=int, default=1)
    args = parser.parse_args()
    server = RedisServer().start()
    logs = Path(tempfile.mkdtemp(prefix="raw-canvas-"))
    try:
        totals = raw_canvas.latency(
            server.url, n=args.n, runs=args.runs, concurrency=16, log_dir=logs
        )
        rate = raw_canvas.rate(
            server.url, procs=args.procs, jobs=args.jobs, n=args.n, concurrency=16, log_dir=logs
        )
        print(
            f"raw Celery canvas, N={args.n}: send->last task p50 "
            f"{statistics.median(totals) * 1000:.1f} ms [{min(totals) * 1000:.1f}-"
            f"{max(totals) * 1000:.1f}] over {args.runs} runs; {args.jobs} at once on "
            f"{args.procs} process(es): {rate:.1f} canvases/s"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
