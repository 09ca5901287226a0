"""Benchmark plumbing: its own Redis, simulator and workers; statistics; timings.

The benchmark runs the production path end to end (client → Redis → Celery
workers → openai SDK → simulator over HTTP); the simulator's latency stands in
for the LLM and reports what it applied, so the critical path is measured.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from vpsweb import settings
from vpsweb.domain.result import TranslationOutput
from vpsweb.local.processes import RedisServer, spawn_worker, stop_process, wait_for_worker
from vpsweb.stages.table import STAGES


@dataclass
class Spread:
    """A median with its spread over repeated runs (min and max, and p95)."""

    median: float
    lo: float
    hi: float
    p95: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            return cls(float("nan"), float("nan"), float("nan"), float("nan"), 0)
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        return cls(statistics.median(ordered), ordered[0], ordered[-1], p95, len(ordered))

    def as_dict(self, digits: int = 4) -> dict[str, float | int]:
        return {
            "median": round(self.median, digits),
            "min": round(self.lo, digits),
            "max": round(self.hi, digits),
            "p95": round(self.p95, digits),
            "n": self.n,
        }

    def fmt(self, unit: str = "s", scale: float = 1.0, digits: int = 3) -> str:
        return (
            f"{self.median * scale:.{digits}f}{unit} "
            f"[{self.lo * scale:.{digits}f}–{self.hi * scale:.{digits}f}]"
        )


def _reported(out: BaseModel) -> float:
    m = getattr(out, "metrics", None)
    return (m.reported_latency_s or 0.0) if m is not None else 0.0


def critical_path_s(out: TranslationOutput, *, sequential: bool = False) -> float:
    """LLM latency on the critical path, as the simulator reported it: the slowest item
    of a fan-out stage (their sum if they ran ``sequential``), plus every other stage."""
    total = 0.0
    for s in STAGES:
        lat = [_reported(o) for o in out.stage_outputs(s)]
        total += sum(lat) if sequential or not s.fan_out else max(lat, default=0.0)
    return total


def _span(out: BaseModel, edge: str) -> datetime | None:
    m = getattr(out, "metrics", None)
    return getattr(m, edge) if m is not None else None


def hop_gaps_s(out: TranslationOutput) -> dict[str, float]:
    """Time between one stage's end and the next one's start (queue + Redis + Celery)."""
    gaps: dict[str, float] = {}
    prev_name, prev_end = "submit", out.created_at
    for s in STAGES:
        starts = [t for o in out.stage_outputs(s) if (t := _span(o, "started_at"))]
        ends = [t for o in out.stage_outputs(s) if (t := _span(o, "finished_at"))]
        if not starts or not ends:
            return gaps
        gaps[f"{prev_name}->{s.name}"] = (min(starts) - prev_end).total_seconds()
        prev_name, prev_end = s.name, max(ends)
    gaps[f"{prev_name}->finalized"] = (out.finished_at - prev_end).total_seconds()
    return gaps


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (a celery worker is one process
    with the threads pool, but count children in case a pool forks)."""
    total = 0
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        pids += [int(p) for p in children.stdout.split()]
    except FileNotFoundError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class SimulatorHandle:
    def __init__(self, url: str) -> None:
        self.url = url
        self.root = url.removesuffix("/v1")

    def stats(self) -> dict:
        with urllib.request.urlopen(self.root + "/stats", timeout=5) as resp:
            return json.load(resp)


class WorkerPool:
    """Workers of one concurrency that can be added to; started in parallel."""

    def __init__(
        self,
        env: BenchEnv,
        concurrency: int,
        log_dir: Path,
        *,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """``extra_env``: more variables for the workers (e.g. a broker of their own)."""
        self.env, self.concurrency, self.log_dir = env, concurrency, log_dir
        self.extra_env = extra_env or {}
        self.procs: list[subprocess.Popen[bytes]] = []

    def grow_to(self, count: int) -> None:
        from vpsweb.workers.factory import create_app

        env = {settings.SIMULATOR_URL_ENV: self.env.simulator.url, **self.extra_env}
        new = [
            spawn_worker(
                self.env.redis_url,
                env=env,
                concurrency=self.concurrency,
                name=f"bench{i}-{time.monotonic_ns()}@%h",
                log_path=self.log_dir / f"w{i}.log",
            )
            for i in range(len(self.procs), count)
        ]
        app = create_app(self.env.redis_url, self.extra_env.get(settings.BROKER_URL_ENV))
        try:
            for proc, name in new:
                self.procs.append(proc)
                wait_for_worker(app, name, proc)
        finally:
            app.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            stop_process(p)


@dataclass
class BenchEnv:
    redis_url: str
    simulator: SimulatorHandle
    redis: RedisServer | None = None

    @contextmanager
    def workers(self, count: int, concurrency: int, log_dir: Path) -> Iterator[WorkerPool]:
        pool = WorkerPool(self, concurrency, log_dir)
        try:
            pool.grow_to(count)
            yield pool
        finally:
            pool.stop()
            self.flush()

    def flush(self) -> None:
        """Empty Redis between scenarios so that one scenario's leftovers cannot slow
        the next (only when the bench owns the Redis)."""
        if self.redis is not None:
            import redis

            redis.Redis.from_url(self.redis_url).flushdb()


@contextmanager
def bench_env(
    *, latency_ms: float, jitter_ms: float, redis_url: str | None, simulator_url: str | None
) -> Iterator[BenchEnv]:
    from vpsweb.local.simulator_process import start_simulator_process

    server = None
    sim_proc = None
    try:
        if redis_url is None:
            server = RedisServer().start()
            redis_url = server.url
        if simulator_url is None:
            sim_proc, simulator_url = start_simulator_process(
                extra_args=["--latency-ms", str(latency_ms), "--jitter-ms", str(jitter_ms)]
            )
        yield BenchEnv(redis_url=redis_url, simulator=SimulatorHandle(simulator_url), redis=server)
    finally:
        if sim_proc is not None:
            stop_process(sim_proc)
        if server is not None:
            server.stop()
