"""`vpsweb bench quota`: the providers' quota, measured end to end.

Each scenario has its own simulator (provider-style limits), two workers x 32 threads
whose config dir declares (or not) providers.simulator.limits, and the bench's Redis:
a) declared 240 rpm (burst 8): a batch; share = accepted calls / makespan / 4 per s.
b) undeclared concurrency 8: a batch; bound = 8 / the simulator's mean latency.
c) a's limits: one interactive job, idle, then while a batch saturates the quota.
e) a's limits: another user's small batch, alone, then while c)'s batch saturates the
   quota: its share of the calls made meanwhile (round-robin between two batches: 50 %).
d) the quota's Redis round trips per call, from MONITOR (the gate has no off switch):
   an acquire is one round trip (settlements pipelined with it ride along); settlements
   pipelined with a step's own writes (its finish) cost none; a round trip of
   settlements alone is one (counted by the settle script itself, exact; MONITOR's
   2 ms grouping is kept beside it); a nap (BLPOP) or a withdrawal is one. With an
   allowance that never binds, and during a).
Paid once: calls the simulator accepted = attempts the jobs recorded.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import yaml

from vpsweb import settings
from vpsweb.bench.harness import BenchEnv, SimulatorHandle, hop_gaps_s
from vpsweb.bench.quota_monitor import PROVIDER, Monitor, ratio
from vpsweb.bench.scenarios import REQUEST
from vpsweb.bench.tails import own_simulator
from vpsweb.client.sync import Client, Job
from vpsweb.config import load_config
from vpsweb.domain.permits import QuotaState
from vpsweb.local.processes import spawn_worker, stop_process, wait_for_worker
from vpsweb.storage.base import JobStatus
from vpsweb.storage.redis import keys

PROCS, THREADS, N = 2, 32, 3
RPM, BURST, MAX_CONCURRENT = 240, 8, 8
REFILL_S = BURST / (RPM / 60)  # the simulator's request bucket refills after a run
SATURATE_S = 3.0  # the batch's head start before the interactive job


@dataclass(frozen=True)
class Sizes:  # jobs per batch of a) and b); c)'s batch and idle runs; d)'s batch
    jobs: int = 40
    batch: int = 200
    idle_runs: int = 3
    probe_jobs: int = 10
    second: int = 5


# --- the arithmetic (unit-tested) ---------------------------------------------------


def share(calls: int, seconds: float, bound_per_s: float) -> float:
    """Achieved calls per second as a share of the bound."""
    return calls / seconds / bound_per_s if seconds > 0 and bound_per_s > 0 else 0.0


def concurrency_bound(max_concurrent: int, latency_s: float) -> float:
    """Calls per second a provider answering ``max_concurrent`` at once can serve."""
    return max_concurrent / latency_s


@dataclass
class Cluster:
    client: Client
    sim: SimulatorHandle
    redis: redis.Redis

    def fresh(self) -> None:
        """Zero the simulator's counters and forget the quota's state and counters."""
        reset = urllib.request.Request(self.sim.root + "/stats/reset", method="POST", data=b"")
        urllib.request.urlopen(reset, timeout=5).close()
        found = list(self.redis.scan_iter(match=keys.quota(PROVIDER) + "*"))
        if found:
            self.redis.delete(*found)

    def state(self) -> QuotaState:
        assert self.client.storage.quotas is not None  # a Redis store has quotas
        return self.client.storage.quotas.state([PROVIDER])[0]


def _config_dir(limits: dict[str, int] | None) -> Path:
    """A copy of the config dir in use with ``limits`` on the simulator provider."""
    target = Path(tempfile.mkdtemp(prefix="vpsweb-bench-quota-cfg-"))
    shutil.copytree(load_config().config_dir, target, dirs_exist_ok=True)
    path = target / "models.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["providers"][PROVIDER].pop("limits", None)
    if limits:
        doc["providers"][PROVIDER]["limits"] = limits
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return target


@contextlib.contextmanager
def cluster(
    env: BenchEnv, log_dir: Path, *, sim_args: list[str], limits: dict[str, int] | None
) -> Iterator[Cluster]:
    from vpsweb.workers.factory import create_app

    cfg_dir = _config_dir(limits)
    procs = []
    try:
        with own_simulator(env, *sim_args) as sim_env:
            worker_env = {
                settings.SIMULATOR_URL_ENV: sim_env.simulator.url,
                settings.CONFIG_DIR_ENV: str(cfg_dir),
            }
            app = create_app(env.redis_url)
            for i in range(PROCS):
                name = f"quota{i}-{time.monotonic_ns()}@%h"
                log = log_dir / f"quota-w{i}.log"
                procs.append(
                    spawn_worker(
                        env.redis_url, env=worker_env, concurrency=THREADS, name=name, log_path=log
                    )[0]
                )
                wait_for_worker(app, name, procs[-1])
            app.close()
            with Client(redis_url=env.redis_url, config=load_config(cfg_dir)) as client:
                store = redis.Redis.from_url(env.redis_url)
                yield Cluster(client, sim_env.simulator, store)
                store.close()
    finally:
        for p in procs:
            stop_process(p)
        env.flush()
        shutil.rmtree(cfg_dir, ignore_errors=True)


def _request() -> dict[str, Any]:
    return {**REQUEST, "parallel_count": N}


def _tally(jobs: list[Job], timeout_s: float) -> dict[str, Any]:
    """Statuses, and the calls the jobs recorded (every attempt, failed jobs' too)."""
    statuses: Counter[str] = Counter()
    recorded = billed = 0
    latency = 0.0
    deadline = time.monotonic() + timeout_s
    for job in jobs:
        record = job.wait(timeout=max(1.0, deadline - time.monotonic()))
        statuses[record.status.value] += 1
        if record.status is JobStatus.SUCCEEDED:
            metrics = job.result(timeout=30).all_metrics()
            recorded += sum(m.attempts for m in metrics)
            billed += sum(m.billed_calls for m in metrics)
            latency += sum(m.llm_latency_s for m in metrics)
        else:
            recorded += job.spent().llm_calls
    return {
        "statuses": dict(statuses),
        "failed": sum(n for s, n in statuses.items() if s != JobStatus.SUCCEEDED.value),
        "recorded_calls": recorded,
        "billed_calls": billed,
        "mean_call_latency_s": round(ratio(latency, billed), 4),
    }


def _batch(cl: Cluster, jobs: int, monitor: Monitor | None = None) -> dict[str, Any]:
    cl.fresh()
    time.sleep(REFILL_S)
    with monitor or contextlib.nullcontext():
        t0 = time.perf_counter()
        handles = cl.client.submit_many([_request()] * jobs, offline=True)
        row = _tally(handles, timeout_s=1800)
        makespan = time.perf_counter() - t0
    stats = cl.sim.stats()
    quota = cl.state()
    row |= {
        "jobs": jobs,
        "makespan_s": round(makespan, 3),
        "accepted": stats["accepted"],
        "throttled": stats["throttled"],
        "throttled_by": stats["throttled_by"],
        "max_in_flight_seen": stats["max_in_flight_seen"],
        "throttled_share": round(ratio(stats["throttled"], stats["accepted"]), 4),
        "paid_once": stats["accepted"] == row["recorded_calls"],
        "final_allowance": quota.allowance,
        "quota_waits": quota.waits,
    }
    if monitor is not None:
        row["redis"] = monitor.summary(stats["accepted"], quota.settled_alone)
    return row


def _warm(cl: Cluster) -> None:
    cl.client.submit_many([_request()], offline=True)[0].result(timeout=120)


def _interactive(cl: Cluster) -> tuple[float, str, dict[str, float]]:
    """Makespan, status, and the gaps between its stages (waiting for a worker thread)."""
    t0 = time.perf_counter()
    job = cl.client.submit(**_request(), offline=True)
    status, took = job.wait(timeout=600).status.value, time.perf_counter() - t0
    gaps = hop_gaps_s(job.result(timeout=30)) if status == "succeeded" else {}
    return took, status, {k: round(v, 3) for k, v in gaps.items()}


# --- the scenarios ------------------------------------------------------------------

RPM_ARGS = ["--rpm", str(RPM), "--burst", str(BURST)]
RPM_LIMITS = {"requests_per_minute": RPM}


def _limited_batch(
    env: BenchEnv, log_dir: Path, sim: list[str], limits: dict[str, int] | None, jobs: int
) -> dict[str, Any]:
    """A batch; MONITOR watches it unless its calls come fast (b: MONITOR slows Redis)."""
    with cluster(env, log_dir, sim_args=sim, limits=limits) as cl:
        _warm(cl)
        watch = limits is not None
        return _batch(cl, jobs, Monitor(env.redis_url) if watch else None)


def _with_share(row: dict[str, Any], bound: float) -> dict[str, Any]:
    row["bound_calls_per_s"] = round(bound, 3)
    row["share"] = round(share(row["accepted"], row["makespan_s"], bound), 4)
    return row


def interactive_under_batch(
    env: BenchEnv, log_dir: Path, sizes: Sizes, sim: list[str]
) -> dict[str, Any]:
    with cluster(env, log_dir, sim_args=[*sim, *RPM_ARGS], limits=RPM_LIMITS) as cl:
        _warm(cl)
        idle = []
        for _ in range(sizes.idle_runs):
            cl.fresh()
            time.sleep(REFILL_S)
            idle.append(_interactive(cl)[0])
        cl.fresh()
        time.sleep(REFILL_S)
        batch = cl.client.submit_many([_request()] * sizes.batch, offline=True)
        time.sleep(SATURATE_S)
        queued_before, accepted_before = cl.state().queued, cl.sim.stats()["accepted"]
        loaded, status, gaps = _interactive(cl)
        queued_after, accepted_after = cl.state().queued, cl.sim.stats()["accepted"]
        for job in batch:
            job.cancel()
        statuses = _tally(batch, timeout_s=600)["statuses"]
    idle_s = statistics.median(idle)
    return {
        "batch_jobs": sizes.batch,
        "idle_makespans_s": [round(s, 3) for s in idle],
        "idle_makespan_s": round(idle_s, 3),
        "loaded_makespan_s": round(loaded, 3),
        "ratio": round(loaded / idle_s, 3),
        "interactive_status": status,
        "interactive_stage_gaps_s": gaps,
        "queued_at_submit": queued_before,
        "queued_at_finish": queued_after,
        "saturated_throughout": queued_before > 0 and queued_after > 0,
        "calls_per_s_meanwhile": round(ratio(accepted_after - accepted_before, loaded), 3),
        "batch_statuses": statuses,
        "failed": statuses.get(JobStatus.FAILED.value, 0) + (status != "succeeded"),
    }


def _small_batch(cl: Cluster, jobs: int) -> tuple[float, int, int]:
    """Makespan, its own calls, and every call the simulator accepted meanwhile."""
    before, t0 = cl.sim.stats()["accepted"], time.perf_counter()
    handles = cl.client.submit_many([_request()] * jobs, offline=True)
    for job in handles:
        job.wait(timeout=900)
    took, accepted = time.perf_counter() - t0, cl.sim.stats()["accepted"] - before
    return took, _tally(handles, timeout_s=60)["recorded_calls"], accepted


def second_batch_under_batch(
    env: BenchEnv, log_dir: Path, sizes: Sizes, sim: list[str]
) -> dict[str, Any]:
    with cluster(env, log_dir, sim_args=[*sim, *RPM_ARGS], limits=RPM_LIMITS) as cl:
        _warm(cl)
        cl.fresh()
        time.sleep(REFILL_S)
        alone, _, _ = _small_batch(cl, sizes.second)
        cl.fresh()
        time.sleep(REFILL_S)
        big = cl.client.submit_many([_request()] * sizes.batch, offline=True)
        time.sleep(SATURATE_S)
        loaded, own, meanwhile = _small_batch(cl, sizes.second)
        for job in big:
            job.cancel()
        _tally(big, timeout_s=600)
    return {
        "batch_jobs": sizes.batch,
        "second_jobs": sizes.second,
        "alone_makespan_s": round(alone, 3),
        "loaded_makespan_s": round(loaded, 3),
        "ratio": round(ratio(loaded, alone), 3),
        "own_calls": own,
        "calls_meanwhile": meanwhile,
        "share": round(ratio(own, meanwhile), 4),
    }


def quota_bench(
    env: BenchEnv,
    *,
    quick: bool,
    batch: int | None,
    latency_ms: float,
    jitter_ms: float,
    log_dir: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    sizes = Sizes(batch=batch or (60 if quick else 200), probe_jobs=10 if quick else 20)
    sim = ["--latency-ms", str(latency_ms), "--jitter-ms", str(jitter_ms)]
    r: dict[str, Any] = {
        "setup": {"procs": PROCS, "threads": THREADS, "parallel_count": N, "sizes": vars(sizes)}
    }
    say(f"quota a) declared {RPM} rpm, {sizes.jobs} jobs ...")
    row = _limited_batch(env, log_dir, [*sim, *RPM_ARGS], RPM_LIMITS, sizes.jobs)
    r["declared_rpm"] = _with_share(row, RPM / 60)
    say(f"quota b) undeclared concurrency {MAX_CONCURRENT}, {sizes.jobs} jobs ...")
    conc = ["--max-concurrent", str(MAX_CONCURRENT)]
    row = _limited_batch(env, log_dir, [*sim, *conc], None, sizes.jobs)
    r["undeclared_concurrency"] = _with_share(
        row, concurrency_bound(MAX_CONCURRENT, latency_ms / 1000)
    )
    say(f"quota c) one interactive job under a batch of {sizes.batch} ...")
    r["interactive"] = interactive_under_batch(env, log_dir, sizes, sim)
    say(f"quota e) a {sizes.second}-job batch under a batch of {sizes.batch} ...")
    r["second_batch"] = second_batch_under_batch(env, log_dir, sizes, sim)
    say(f"quota d) limiter cost, {sizes.probe_jobs} jobs, allowance never binding ...")
    r["limiter_cost"] = _limited_batch(
        env, log_dir, sim, {"max_concurrent": 1000}, sizes.probe_jobs
    )
    return r
