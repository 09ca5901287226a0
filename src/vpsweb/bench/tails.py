"""Long-tailed LLM latency: what the straggler policy buys over waiting for every candidate.

A simulator of its own draws each latency from a lognormal (median 1 s, σ 0.8 by
default), *paired* (``--latency-paired``): the k-th request of a poem's step gets
the same draw in every configuration, so N=8 and N=1 jobs of one poem differ by
their candidate stage alone and a dozen jobs compare them fairly (without pairing,
the four later stages' tails swamp the difference: medians of 9 jobs move ±15 %).
"""

from __future__ import annotations

import contextlib
import statistics
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from vpsweb.bench.harness import BenchEnv, SimulatorHandle, Spread
from vpsweb.bench.scenarios import REQUEST
from vpsweb.client.sync import Client
from vpsweb.config import AppConfig
from vpsweb.domain.models import WorkflowMode
from vpsweb.local.processes import stop_process
from vpsweb.local.simulator_process import start_simulator_process


@contextlib.contextmanager
def own_simulator(env: BenchEnv, *args: str) -> Iterator[BenchEnv]:
    """The same Redis with another simulator (its own latency model)."""
    proc, url = start_simulator_process(extra_args=list(args))
    try:
        yield BenchEnv(redis_url=env.redis_url, simulator=SimulatorHandle(url), redis=env.redis)
    finally:
        stop_process(proc)


def _reset(sim: SimulatorHandle) -> None:
    """Restart the paired draws: every configuration sees the same latencies."""
    req = urllib.request.Request(sim.root + "/stats/reset", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=5):
        pass


def _one(client: Client, i: int, *, n: int, straggler: str | None) -> tuple[float, float]:
    """One job of poem ``i`` (the same poem in every configuration): its makespan as
    the store timed it (submission to result) and the share of candidates kept."""
    request = {**REQUEST, "poem": f"{REQUEST['poem']}(take {i})\n", "parallel_count": n}
    if straggler is not None:
        request["straggler"] = straggler
    (job,) = client.submit_many([request], offline=True)
    out = job.result(timeout=600)
    kept = sum(c.ok for c in out.candidates) / n
    return (out.finished_at - out.created_at).total_seconds(), kept


def long_tail(
    env: BenchEnv,
    cfg: AppConfig,
    *,
    ns: list[int],
    jobs: int,
    at_once: int,
    sigma: float,
    latency_ms: float,
    log_dir: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    default = cfg.pipeline.straggler_for(WorkflowMode.HYBRID)
    args = ["--latency-ms", str(latency_ms), "--latency-dist", "lognormal"]
    args += ["--latency-sigma", str(sigma), "--latency-paired", "1"]
    rows: dict[str, dict[int, Any]] = {"wait_all": {}, "default": {}}
    with (
        own_simulator(env, *args) as tail_env,
        tail_env.workers(1, concurrency=at_once * (max(ns) + 2), log_dir=log_dir),
        Client(redis_url=env.redis_url, config=cfg) as client,
        ThreadPoolExecutor(max_workers=at_once) as pool,
    ):
        _one(client, -1, n=1, straggler="wait_all")  # warm-up: imports, connections
        for policy in ("wait_all", "default"):
            for n in ns:
                if policy == "default" and default.quorum_count(n) is None:
                    rows[policy][n] = {**rows["wait_all"][n], "same_as_wait_all": True}
                    continue
                _reset(tail_env.simulator)
                straggler = "wait_all" if policy == "wait_all" else None
                done = list(pool.map(partial(_one, client, n=n, straggler=straggler), range(jobs)))
                spans = [d[0] for d in done]
                rows[policy][n] = {
                    "makespan_s": Spread.of(spans),
                    "kept": round(statistics.mean(d[1] for d in done), 4),
                }
                say(
                    f"  {policy} N={n}: makespan {Spread.of(spans).fmt()}, kept "
                    f"{rows[policy][n]['kept']:.0%}"
                )
    for policy_rows in rows.values():
        base = policy_rows[ns[0]]["makespan_s"].median
        for row in policy_rows.values():
            row["ratio_to_n1"] = round(row["makespan_s"].median / base, 4)
    return {
        "latency": {"median_ms": latency_ms, "sigma": sigma, "paired": True},
        "jobs": jobs,
        "at_once": at_once,
        "default_policy": default.model_dump(),
        "by_policy": rows,
    }
