"""`vpsweb bench store`: what one job costs the state store, for capacity planning.

The store gets a redis-server of its own and the broker (with Celery's chord
bookkeeping) another, so the figures are the store's alone. The same jobs (N=3) run
at a short and a long simulated call latency on one worker:

* commands per job (``INFO commandstats``), less the idle cluster's background
  (heartbeats, the dispatchers' and sweeper's polls) measured before for as long;
  the jobs are waited for without a follower (one reads the store every second: the
  following client's cost, not the job's), by the simulator's count of answered calls;
* commands per call-second: the long run's extra commands over its extra seconds
  spent inside LLM calls (what status and lease checks cost while a call runs);
* the store's CPU per job (``used_cpu_sys`` + ``used_cpu_user``), background less;
* bytes kept per ended job under retention (``MEMORY USAGE ... SAMPLES 0`` of every key, and the
  growth of ``used_memory``), the first limit of one primary;
* under MONITOR, the client commands per job by where their keys would live on a
  Redis Cluster: a job's own slot (spread over the shards) or one global slot each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from vpsweb import settings
from vpsweb.bench import capacity
from vpsweb.bench.harness import BenchEnv, SimulatorHandle, WorkerPool
from vpsweb.bench.scenarios import REQUEST
from vpsweb.client.sync import Client
from vpsweb.config import load_config
from vpsweb.local.processes import RedisServer, stop_process
from vpsweb.local.simulator_process import start_simulator_process

N = capacity.N
CALLS = N * capacity.CALLS[0] + sum(capacity.CALLS[1:])  # LLM calls of one job


def _commands(r: redis.Redis) -> dict[str, int]:
    stats = r.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def _cpu_s(r: redis.Redis) -> float:
    cpu = r.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


class Meter:
    """The store's command counts and CPU between ``start`` and ``stop``."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r

    def start(self) -> None:
        self.t0, self.c0, self.cpu0 = time.monotonic(), _commands(self.r), _cpu_s(self.r)

    def stop(self) -> dict[str, Any]:
        elapsed, after, cpu = time.monotonic() - self.t0, _commands(self.r), _cpu_s(self.r)
        # The meter's own INFO calls are not the cluster's.
        per = {k: n - self.c0.get(k, 0) for k, n in after.items() if k != "info"}
        return {
            "elapsed_s": elapsed,
            "commands": sum(per.values()),
            "by_command": {k: n for k, n in per.items() if n},
            "cpu_s": cpu - self.cpu0,
        }


def _idle(r: redis.Redis, seconds: float) -> dict[str, Any]:
    meter = Meter(r)
    meter.start()
    time.sleep(seconds)
    return meter.stop()


def _run_jobs(client: Client, sim: SimulatorHandle, count: int, tag: str) -> list[Any]:
    """``count`` jobs, waited for without following them (a follower reads the store
    every second, which is the client's cost, not the job's): until the simulator has
    answered all their calls, then each result once."""
    before = int(sim.stats()["total_requests"])
    jobs = [
        client.submit(
            **{**REQUEST, "poem": f"{REQUEST['poem']}({tag} {i})\n"}, parallel_count=N, offline=True
        )
        for i in range(count)
    ]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        stats = sim.stats()
        if stats["total_requests"] - before >= CALLS * count and not stats["in_flight"]:
            break
        time.sleep(0.5)
    return [job.result(timeout=120) for job in jobs]


def _kept_bytes(r: redis.Redis) -> dict[str, int]:
    """Bytes of the jobs' keys, of vpsweb's other keys, of the rest (Celery's results
    and chord counters: the result backend is the store's Redis), and used_memory."""
    kept = {"job": 0, "vpsweb_other": 0, "celery": 0}
    for name in r.scan_iter(count=1000):
        size = int(r.memory_usage(name, samples=0) or 0)  # every field: exact
        kind = (
            "job"
            if name.startswith(b"vpsweb:job:")
            else "vpsweb_other"
            if name.startswith(b"vpsweb:")
            else "celery"
        )
        kept[kind] += size
    kept["used_memory"] = int(r.info("memory")["used_memory"])
    return kept


def _key_class(command: str) -> str:
    """Where a command's first key lives on a Redis Cluster: "job" (a job's or a
    batch's own hash tag: spread over every shard), a provider's quota slot, or the name
    of a global key (one slot each)."""
    tokens = command.split(" ")
    name = tokens[0].upper()
    if name in ("EVAL", "EVALSHA") and len(tokens) > 3 and tokens[2].isdigit():
        tokens = tokens[3:] if int(tokens[2]) else []
    elif name in ("XREAD", "XREADGROUP") and "STREAMS" in (t.upper() for t in tokens):
        tokens = tokens[[t.upper() for t in tokens].index("STREAMS") + 1 :]
    else:
        tokens = tokens[1:]
    key = next((t for t in tokens if t.startswith("vpsweb:")), None)
    if key is None:
        return "other (Celery's results, server commands)"
    if key.startswith(("vpsweb:job:{", "vpsweb:batch:{")):
        return "job (its own slot)"
    if key.startswith("vpsweb:quota:{"):
        return "quota (the provider's slot)"
    head = key.split("}")[0] + "}" if "{" in key else ":".join(key.split(":")[:2])
    return head


def _by_key_class(
    client: Client, sim: SimulatorHandle, store_url: str, jobs: int
) -> dict[str, float]:
    """Client commands per job (scripts' inner commands left out: they run where their
    script does) by where their key would live on a Cluster, from MONITOR."""
    import threading

    counts: dict[str, int] = {}
    stop = threading.Event()
    monitor_client = redis.Redis.from_url(store_url, decode_responses=True)
    ready = threading.Event()

    def watch() -> None:
        with monitor_client.monitor() as m:
            ready.set()
            while not stop.is_set():
                found = m.next_command()
                if found and found.get("client_type") != "lua":
                    cls = _key_class(found["command"])
                    counts[cls] = counts.get(cls, 0) + 1

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(5)
    _run_jobs(client, sim, jobs, "monitored")
    stop.set()
    redis.Redis.from_url(store_url).ping()  # one more command wakes the monitor up
    thread.join(5)
    monitor_client.close()
    return {k: round(n / jobs, 1) for k, n in sorted(counts.items(), key=lambda kv: -kv[1])}


def _phase(
    client: Client,
    sim: SimulatorHandle,
    store: redis.Redis,
    jobs: int,
    latency_s: float,
    idle: dict[str, Any],
) -> dict[str, Any]:
    meter = Meter(store)
    meter.start()
    outs = _run_jobs(client, sim, jobs, f"{latency_s:g}")
    got = meter.stop()
    background = idle["commands"] / idle["elapsed_s"] * got["elapsed_s"]
    cpu_background = idle["cpu_s"] / idle["elapsed_s"] * got["elapsed_s"]
    calls = sum(o.totals.llm_calls for o in outs)
    return {
        "latency_s": latency_s,
        "jobs": jobs,
        "elapsed_s": round(got["elapsed_s"], 2),
        "llm_calls": calls,
        "commands_per_job": round((got["commands"] - background) / jobs, 1),
        "commands_per_job_raw": round(got["commands"] / jobs, 1),
        "cpu_ms_per_job": round((got["cpu_s"] - cpu_background) * 1000 / jobs, 2),
        "call_seconds_per_job": round(calls * latency_s / jobs, 2),
        "top_commands_per_job": {
            k: round(n / jobs, 1)
            for k, n in sorted(got["by_command"].items(), key=lambda kv: -kv[1])[:12]
        },
    }


def _at_latency(
    store_url: str, broker_url: str, jobs: int, latency_s: float, log_dir: Path, say: Any
) -> dict[str, Any]:
    """The idle background, then ``jobs`` jobs, with a simulator of ``latency_s``."""
    store = redis.Redis.from_url(store_url)
    proc, url = start_simulator_process(extra_args=["--latency-ms", str(latency_s * 1000)])
    sim = SimulatorHandle(url)
    pool = WorkerPool(
        BenchEnv(redis_url=store_url, simulator=sim),
        16,
        log_dir,
        extra_env={settings.BROKER_URL_ENV: broker_url},
    )
    try:
        pool.grow_to(1)
        with Client(redis_url=store_url, config=load_config()) as client:
            say(f"store: idle background for 10 s (latency {latency_s:g} s) ...")
            idle = _idle(store, 10.0)
            say(f"store: {jobs} jobs at {latency_s:g} s per call ...")
            phase = _phase(client, sim, store, jobs, latency_s, idle)
            if latency_s < 1:
                say("store: 5 jobs under MONITOR, commands by where their keys live ...")
                phase["by_key_class"] = _by_key_class(client, sim, store_url, 5)
        phase["idle_commands_per_s"] = round(idle["commands"] / idle["elapsed_s"], 1)
        return phase
    finally:
        pool.stop()
        stop_process(proc)
        store.close()


def store_bench(
    env: BenchEnv, *, quick: bool, log_dir: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    """``env`` gives the bench's Redis (the broker here); the store gets its own."""
    jobs = 10 if quick else 20
    short_s, long_s = 0.5, (4.0 if quick else 8.0)
    server = RedisServer().start()
    store = redis.Redis.from_url(server.url)
    results: dict[str, Any] = {"jobs_per_phase": jobs, "parallel_count": N}
    empty = int(store.info("memory")["used_memory"])
    try:
        a = _at_latency(server.url, env.redis_url, jobs, short_s, log_dir, say)
        b = _at_latency(server.url, env.redis_url, jobs, long_s, log_dir, say)
        results |= {"short": a, "long": b}
        kept = _kept_bytes(store)
        ended = 2 * jobs
        results["kept_bytes_per_job"] = round(kept["job"] / ended)
        results["celery_bytes_per_job"] = round(kept["celery"] / ended)
        results["other_keys_bytes"] = kept["vpsweb_other"]
        results["used_memory_per_job"] = round((kept["used_memory"] - empty) / ended)
        extra_s = b["call_seconds_per_job"] - a["call_seconds_per_job"]
        per = (b["commands_per_job"] - a["commands_per_job"]) / extra_s
        results["commands_per_call_second"] = round(per, 3)
    finally:
        store.close()
        server.stop()
    return results


def store_table(r: dict[str, Any]) -> str:
    """The figures as the docs quote them."""
    lines = [f"State store cost per job (N={r['parallel_count']}, {r['jobs_per_phase']} jobs each)"]
    for p in (r["short"], r["long"]):
        lines.append(
            f"  calls of {p['latency_s']:g} s: {p['commands_per_job']:.0f} commands/job "
            f"({p['commands_per_job_raw']:.0f} with the background of "
            f"{p['idle_commands_per_s']:.1f}/s), {p['cpu_ms_per_job']:.2f} ms Redis CPU/job, "
            f"{p['call_seconds_per_job']:.1f} call-s/job, {p['llm_calls']} calls"
        )
        top = ", ".join(f"{k} {v:g}" for k, v in p["top_commands_per_job"].items())
        lines.append(f"    top commands per job: {top}")
    lines.append(f"  commands per call-second: {r['commands_per_call_second']:.3f}")
    classes = r["short"].get("by_key_class", {})
    if classes:
        lines.append("  client commands per job by where their keys live on a Cluster:")
        lines += [f"    {k}: {v:g}" for k, v in classes.items()]
    lines.append(
        f"  kept per ended job: {r['kept_bytes_per_job']:,} B of its keys, "
        f"{r['celery_bytes_per_job']:,} B of Celery's results, "
        f"{r['used_memory_per_job']:,} B of used_memory; "
        f"vpsweb's global keys {r['other_keys_bytes']:,} B"
    )
    return "\n".join(lines)
