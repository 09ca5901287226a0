"""Orchestration capacity: jobs per second with instant LLM answers, beside Celery alone.

With a zero-latency simulator nothing waits on a model, so the rate a pool sustains
is what orchestration costs: Celery's messages and results, vpsweb's bookkeeping in
Redis, the openai SDK's request handling, prompt rendering and parsing. The same
canvas of no-op tasks (``raw_canvas``), with the same worker processes and threads
on the same Redis in the same run, is the ceiling Celery itself sets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vpsweb.bench import raw_canvas
from vpsweb.bench.harness import BenchEnv
from vpsweb.bench.scenarios import REQUEST
from vpsweb.bench.tails import own_simulator
from vpsweb.client import Client
from vpsweb.config import AppConfig

N = 3  # the default parallel_count


def capacity(
    env: BenchEnv,
    cfg: AppConfig,
    *,
    procs: list[int],
    jobs: int,
    concurrency: int,
    log_dir: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    rows: dict[int, dict[str, Any]] = {}
    request = {**REQUEST, "parallel_count": N}
    with (
        own_simulator(env, "--latency-ms", "0") as fast,
        fast.workers(0, concurrency=concurrency, log_dir=log_dir) as pool,
        Client(redis_url=env.redis_url, config=cfg) as client,
    ):
        for count in procs:
            pool.grow_to(count)
            client.submit_many([request], offline=True)[0].result(timeout=60)  # warm-up
            t0 = time.perf_counter()
            handles = client.submit_many([request] * jobs, offline=True)
            submitted = time.perf_counter() - t0
            for job in handles:
                job.result(timeout=900)
            elapsed = time.perf_counter() - t0
            rows[count] = {"jobs": jobs, "submit_many_s": round(submitted, 3)}
            rows[count]["vpsweb_jobs_per_s"] = round(jobs / elapsed, 2)
    for count in procs:
        raw = raw_canvas.rate(
            env.redis_url, procs=count, jobs=jobs, n=N, concurrency=concurrency, log_dir=log_dir
        )
        row = rows[count]
        row["raw_canvas_per_s"] = round(raw, 2)
        row["ratio_to_raw"] = round(row["vpsweb_jobs_per_s"] / raw, 4)
        say(
            f"  {count} proc: vpsweb {row['vpsweb_jobs_per_s']:.1f} jobs/s, raw canvas "
            f"{raw:.1f}/s ({row['ratio_to_raw']:.0%}); submit_many of {jobs}: "
            f"{row['submit_many_s']:.2f} s"
        )
    return {"parallel_count": N, "concurrency_per_process": concurrency, "by_processes": rows}
