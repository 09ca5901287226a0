"""The floor under vpsweb's orchestration: its canvas shape with no-op tasks.

``celery -A vpsweb.bench.raw_worker worker`` (the bench starts it, with the store URL
in the environment) runs ``chain(chord([noop] x N, noop), noop x 4)``, vpsweb's
canvas for N candidates, with vpsweb's Celery settings but no Redis bookkeeping,
no LLM client and no stage code: what Celery alone sustains on this machine.

With ``calls`` (and a simulator URL in the worker's environment) each task also
makes as many chat-completion requests as vpsweb's stage at that place makes,
through the ``openai`` SDK's leanest path (a synchronous ``post``, the body as
JSON, no model of the answer): Celery plus the requests alone, with nothing of
vpsweb, the ceiling of any orchestration that calls its models through the SDK.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx2
import openai
import redis
from celery import Celery, chain, chord
from celery.result import denied_join_result

from vpsweb import settings
from vpsweb.config import load_config
from vpsweb.local.processes import free_port, stop_process, wait_for_worker
from vpsweb.workers.factory import celery_settings

QUEUE = "raw"
DONE = "vpsweb:bench:raw:done"  # counter: canvases whose last task ran
# A request of about a stage's size: a system prompt and a short poem.
MESSAGES = [
    {"role": "system", "content": "You translate poems faithfully. " * 30},
    {
        "role": "user",
        "content": "Translate the poem.\n<poem>\n" + "床前明月光，疑是地上霜。\n" * 8 + "</poem>",
    },
]


class _Caller:
    """One SDK client per worker process, made on first use (thread-safe SDK)."""

    def __init__(self, llm_url: str | None) -> None:
        self.llm_url = llm_url
        self._sdk: openai.OpenAI | None = None
        self._lock = threading.Lock()

    def __call__(self, calls: int) -> None:
        if not calls:
            return
        with self._lock:
            if self._sdk is None:
                if not self.llm_url:
                    raise RuntimeError("raw canvas with calls: no simulator URL")
                self._sdk = openai.OpenAI(base_url=self.llm_url, api_key="offline", max_retries=0)
        body = {"model": "deepseek-chat", "messages": MESSAGES, "max_tokens": 1000}
        for _ in range(calls):
            response = self._sdk.post("/chat/completions", body=body, cast_to=httpx2.Response)
            json.loads(response.content)


def make_app(url: str, llm_url: str | None = None) -> Celery:
    app = Celery("raw_canvas")
    app.conf.update(celery_settings(url, url, load_config()))
    app.conf.update(task_routes={}, task_queues=None, task_default_queue=QUEUE)
    store = redis.Redis.from_url(url)
    call = _Caller(llm_url)

    @app.task(name="raw.noop", shared=False)
    def noop(calls: int = 0) -> int:
        call(calls)
        return 1

    @app.task(name="raw.last", shared=False)
    def last(calls: int = 0) -> int:
        call(calls)
        store.incr(DONE)
        return 1

    return app


def canvas(app: Celery, n: int, calls: Sequence[int] | None = None) -> object:
    """``calls``: requests per link, as vpsweb's stages make them: one per header
    task, then one number per later link (the callback, three links, the last)."""
    noop, last = app.tasks["raw.noop"], app.tasks["raw.last"]
    each, callback, *links, final = calls if calls is not None else [0] * 6
    header = chord([noop.si(each) for _ in range(n)], noop.si(callback))
    return chain(header, *(noop.si(c) for c in links), last.si(final))


def send(app: Celery, n: int, calls: Sequence[int] | None = None) -> None:
    """Send one canvas as vpsweb's dispatcher does: without subscribing to its
    results (nothing joins them; a subscription would also outlive the bench's Redis)."""
    with denied_join_result():
        canvas(app, n, calls).apply_async()  # type: ignore[attr-defined]


def spawn(
    url: str, *, concurrency: int, log: Path, llm_url: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    name = f"raw{free_port()}@{socket.gethostname()}"
    cmd = [sys.executable, "-m", "celery", "-A", "vpsweb.bench.raw_worker", "worker"]
    cmd += ["-P", "threads", "-c", str(concurrency), "-Q", QUEUE, "-n", name]
    cmd += ["--loglevel", "WARNING", "--without-mingle", "--without-gossip"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, settings.REDIS_URL_ENV: url}
            | ({settings.SIMULATOR_URL_ENV: llm_url} if llm_url else {}),
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, name


def latency(url: str, *, n: int, runs: int, concurrency: int, log_dir: Path) -> list[float]:
    """Seconds from sending one canvas to its last task, one canvas at a time: the
    floor of what Celery adds to a job's makespan (after one warm-up canvas)."""
    app = make_app(url)
    store = redis.Redis.from_url(url)
    proc, name = spawn(url, concurrency=concurrency, log=log_dir / "raw-latency.log")
    totals: list[float] = []
    try:
        wait_for_worker(app, name, proc)
        for run in range(runs + 1):
            store.set(DONE, 0)
            t0 = time.perf_counter()
            send(app, n)
            _wait(store, 1)
            if run:  # the first is a warm-up
                totals.append(time.perf_counter() - t0)
    finally:
        stop_process(proc)
        app.close()
    return totals


def rate(
    url: str,
    *,
    procs: int,
    jobs: int,
    n: int,
    concurrency: int,
    log_dir: Path,
    calls: Sequence[int] | None = None,
    llm_url: str | None = None,
) -> float:
    """Canvases per second that ``procs`` worker processes sustain, ``jobs`` sent at
    once (with ``calls``, each task's requests to the simulator at ``llm_url``)."""
    app = make_app(url)
    store = redis.Redis.from_url(url)
    workers = [
        spawn(url, concurrency=concurrency, log=log_dir / f"raw{i}.log", llm_url=llm_url)
        for i in range(procs)
    ]
    try:
        for proc, name in workers:
            wait_for_worker(app, name, proc)
        store.set(DONE, 0)
        send(app, n, calls)
        _wait(store, 1)  # warm-up
        store.set(DONE, 0)
        t0 = time.perf_counter()
        for _ in range(jobs):
            send(app, n, calls)
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
