"""The floor under vpsweb's orchestration: its canvas shape with no-op tasks.

``celery -A vpsweb.bench.raw_worker worker`` (the bench starts it, with the store URL
in the environment) runs ``chain(chord([noop] x N, noop), noop x 4)``, vpsweb's
canvas for N candidates, with vpsweb's Celery settings but no Redis bookkeeping,
no LLM client and no stage code: what Celery alone sustains on this machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from celery import Celery, chain, chord

from vpsweb import settings
from vpsweb.config import load_config
from vpsweb.local.processes import free_port, stop_process, wait_for_worker
from vpsweb.workers.factory import celery_settings

QUEUE = "raw"
DONE = "vpsweb:bench:raw:done"  # counter: canvases whose last task ran


def make_app(url: str) -> Celery:
    app = Celery("raw_canvas")
    app.conf.update(celery_settings(url, url, load_config()))
    app.conf.update(task_routes={}, task_queues=None, task_default_queue=QUEUE)
    store = redis.Redis.from_url(url)

    @app.task(name="raw.noop", shared=False)
    def noop(*_args: object) -> int:
        return 1

    @app.task(name="raw.last", shared=False)
    def last(*_args: object) -> int:
        store.incr(DONE)
        return 1

    return app


def canvas(app: Celery, n: int) -> object:
    noop, last = app.tasks["raw.noop"], app.tasks["raw.last"]
    header = chord([noop.si() for _ in range(n)], noop.si())
    return chain(header, noop.si(), noop.si(), noop.si(), last.si())


def spawn(url: str, *, concurrency: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    name = f"raw{free_port()}@{socket.gethostname()}"
    cmd = [sys.executable, "-m", "celery", "-A", "vpsweb.bench.raw_worker", "worker"]
    cmd += ["-P", "threads", "-c", str(concurrency), "-Q", QUEUE, "-n", name]
    cmd += ["--loglevel", "WARNING", "--without-mingle", "--without-gossip"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, settings.REDIS_URL_ENV: url},
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, name


def rate(url: str, *, procs: int, jobs: int, n: int, concurrency: int, log_dir: Path) -> float:
    """Canvases per second that ``procs`` worker processes sustain, ``jobs`` sent at once."""
    app = make_app(url)
    store = redis.Redis.from_url(url)
    workers = [
        spawn(url, concurrency=concurrency, log=log_dir / f"raw{i}.log") for i in range(procs)
    ]
    try:
        for proc, name in workers:
            wait_for_worker(app, name, proc)
        store.set(DONE, 0)
        canvas(app, n).apply_async()  # type: ignore[attr-defined]
        _wait(store, 1)  # warm-up
        store.set(DONE, 0)
        t0 = time.perf_counter()
        for _ in range(jobs):
            canvas(app, n).apply_async()  # type: ignore[attr-defined]
        _wait(store, jobs)
        return jobs / (time.perf_counter() - t0)
    finally:
        for proc, _ in workers:
            stop_process(proc)
        app.close()


def _wait(store: redis.Redis, count: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while int(store.get(DONE) or 0) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"raw canvases: {int(store.get(DONE) or 0)} of {count} done")
        time.sleep(0.005)
