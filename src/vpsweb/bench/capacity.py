"""Orchestration capacity: jobs per second with instant LLM answers, beside Celery alone.

With a zero-latency simulator nothing waits on a model, so the rate a pool sustains
is what orchestration costs: Celery's messages and results, vpsweb's bookkeeping in
Redis, the openai SDK's request handling, prompt rendering and parsing. The same
canvas of no-op tasks (``raw_canvas``), with the same worker processes and threads
on the same Redis in the same run, is the ceiling Celery itself sets; the same
canvas whose tasks also make vpsweb's nine requests through the SDK (and nothing
else) is the ceiling of any orchestration that calls its models that way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from vpsweb.bench import raw_canvas
from vpsweb.bench.harness import BenchEnv
from vpsweb.bench.scenarios import REQUEST
from vpsweb.bench.tails import own_simulator
from vpsweb.client.sync import Client
from vpsweb.config import AppConfig

N = 3  # the default parallel_count
# Requests per link of the canvas, as vpsweb's stages make them at N=3: one per
# candidate; the evaluation's two orders; the editor; the reviser; the revision
# check's two orders; none in finalize. Checked against a real job's count below.
CALLS = (1, 2, 1, 1, 2, 0)


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
    with own_simulator(env, "--latency-ms", "0") as fast:
        with (
            fast.workers(0, concurrency=concurrency, log_dir=log_dir) as pool,
            Client(redis_url=env.redis_url, config=cfg) as client,
        ):
            for count in procs:
                pool.grow_to(count)
                warm = client.submit_many([request], offline=True)[0].result(timeout=60)
                _check_calls(warm.totals.llm_calls)
                rows[count] = _vpsweb_rate(client, request, jobs)
        for count in procs:
            rate = partial(
                raw_canvas.rate,
                env.redis_url,
                procs=count,
                jobs=jobs,
                n=N,
                concurrency=concurrency,
                log_dir=log_dir,
            )
            row = rows[count]
            row["raw_canvas_per_s"] = round(rate(), 2)
            before = fast.simulator.stats()["total_requests"]
            row["raw_with_calls_per_s"] = round(rate(calls=CALLS, llm_url=fast.simulator.url), 2)
            # Requests the simulator answered for those canvases (and the warm-up's).
            row["raw_with_calls_requests"] = fast.simulator.stats()["total_requests"] - before
            row["ratio_to_raw"] = round(row["vpsweb_jobs_per_s"] / row["raw_canvas_per_s"], 4)
            row["raw_with_calls_to_raw"] = round(
                row["raw_with_calls_per_s"] / row["raw_canvas_per_s"], 4
            )
            row["ratio_to_raw_with_calls"] = round(
                row["vpsweb_jobs_per_s"] / row["raw_with_calls_per_s"], 4
            )
            say(
                f"  {count} proc: vpsweb {row['vpsweb_jobs_per_s']:.1f} jobs/s, raw canvas "
                f"{row['raw_canvas_per_s']:.1f}/s ({row['ratio_to_raw']:.0%}), with the "
                f"requests {row['raw_with_calls_per_s']:.1f}/s "
                f"({row['ratio_to_raw_with_calls']:.0%}); submit_many of {jobs}: "
                f"{row['submit_many_s']:.2f} s"
            )
    return {
        "parallel_count": N,
        "concurrency_per_process": concurrency,
        "calls_per_link": list(CALLS),
        "by_processes": rows,
    }


def _vpsweb_rate(client: Client, request: dict[str, Any], jobs: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    handles = client.submit_many([request] * jobs, offline=True)
    submitted = time.perf_counter() - t0
    for job in handles:
        job.result(timeout=900)
    elapsed = time.perf_counter() - t0
    return {
        "jobs": jobs,
        "submit_many_s": round(submitted, 3),
        "vpsweb_jobs_per_s": round(jobs / elapsed, 2),
    }


def _check_calls(made: int) -> None:
    """The raw canvas's requests must stay those of a real job."""
    expected = N * CALLS[0] + sum(CALLS[1:])
    if made != expected:
        raise RuntimeError(
            f"a job of N={N} made {made} LLM calls, the raw canvas's CALLS {expected}: "
            "update vpsweb.bench.capacity.CALLS to the stages' calls"
        )
