"""The floor under vpsweb's orchestration: the same canvas shape with no-op tasks.

Run: .venv/bin/python bench/raw_celery_canvas.py [--n 3] [--runs 10]
Starts a private redis-server and one threads-pool worker with vpsweb's Celery
settings, then times chain(chord([noop] * N, noop), noop, noop, noop) from send to
the last task, and each hop between consecutive tasks. Whatever vpsweb adds per
job comes on top of this.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import redis
from celery import Celery, chain, chord
from vpsweb.workers.processes import RedisServer, stop_process

from vpsweb.config import load_config
from vpsweb.workers.app import celery_settings

URL = os.environ.get("RAW_CANVAS_URL", "")
app = Celery("raw_canvas")
if URL:
    app.conf.update(celery_settings(URL, load_config()))
    app.conf.update(task_routes={}, task_queues=None, task_default_queue="raw")
    _r = redis.Redis.from_url(URL)


@app.task(name="raw.noop")
def noop(*_args: object) -> int:
    _r.rpush("raw:times", repr(time.time()))
    return 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    server = RedisServer().start()
    env = {
        **os.environ,
        "RAW_CANVAS_URL": server.url,
        "PYTHONPATH": os.path.dirname(os.path.abspath(__file__)),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "raw_celery_canvas",
            "worker",
            "-P",
            "threads",
            "-c",
            "16",
            "-Q",
            "raw",
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        env=env,
        start_new_session=True,
    )
    try:
        os.environ["RAW_CANVAS_URL"] = server.url
        sys.path.insert(0, env["PYTHONPATH"])
        import raw_celery_canvas as raw_canvas  # re-imported, configured for this server

        r = redis.Redis.from_url(server.url)
        totals, hops = [], []
        expected = args.n + 4
        for run in range(args.runs + 1):
            r.delete("raw:times")
            t0 = time.time()
            canvas = chain(
                chord([raw_canvas.noop.si() for _ in range(args.n)], raw_canvas.noop.s()),
                raw_canvas.noop.si(),
                raw_canvas.noop.si(),
                raw_canvas.noop.si(),
            )
            canvas.apply_async()
            deadline = time.monotonic() + 30
            while r.llen("raw:times") < expected and time.monotonic() < deadline:
                time.sleep(0.001)
            ts = [float(x) for x in r.lrange("raw:times", 0, -1)]
            if run == 0:
                continue  # warm-up
            totals.append(ts[-1] - t0)
            hops += [b - a for a, b in zip(ts[args.n - 1 :], ts[args.n :], strict=False)]
        print(
            f"raw Celery canvas, N={args.n}, {args.runs} runs: send->last task "
            f"p50 {statistics.median(totals) * 1000:.1f} ms "
            f"[{min(totals) * 1000:.1f}-{max(totals) * 1000:.1f}], "
            f"hop p50 {statistics.median(hops) * 1000:.1f} ms"
        )
    finally:
        stop_process(worker)
        server.stop()


if __name__ == "__main__":
    main()
