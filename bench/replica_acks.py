"""What replica acknowledgements cost per job: the same jobs through one Sentinel group
(a primary, a replica, three Sentinels on this machine), acks off and on, alternating.

Run (from the repository's root; it borrows the tests' Sentinel and cluster helpers):
  PYTHONPATH=. .venv/bin/python bench/replica_acks.py [--jobs 20] [--n 3]
      [--rounds 2] [--latency-ms 1000] [--concurrency 16]

Each round starts a worker (and a client) with VPSWEB_REDIS_REPLICA_ACKS=0, sends
``--jobs`` jobs at once, waits for all, stops the worker; then the same with 1. Printed
per mode: the makespan ÷ jobs, the median job time (created → finished), and per job
the WAIT commands the primary ran, the SET commands (a fence is one; leases and step
outputs are the same in both modes) and all commands (INFO commandstats deltas).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from tests.helpers.cluster import Cluster

from vpsweb import settings
from vpsweb.client.sync import Client
from vpsweb.local.processes import stop_process


def _counts(port: int) -> dict[str, int]:
    client = redis.Redis(port=port, decode_responses=True)
    try:
        stats: dict[str, Any] = client.info("commandstats")
        total = int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()
    calls = {
        name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("wait", "set")
    }
    return {**calls, "all": total}


def _round(c: Cluster, acks: str, jobs: int, n: int) -> dict[str, float]:
    os.environ[settings.REDIS_REPLICA_ACKS_ENV] = acks  # the worker and the client read it
    worker = c.add_worker(name=f"acks{acks}-{time.monotonic_ns()}@%h")
    client = Client(redis_url=c.store_url, config=c.config)
    assert c.sentinel is not None and c.sentinel.primary is not None
    port = c.sentinel.primary.port
    try:
        before = _counts(port)
        t0 = time.monotonic()
        handles = [c.submit(client, parallel_count=n) for _ in range(jobs)]
        outputs = [job.result(timeout=600) for job in handles]
        makespan = time.monotonic() - t0
        after = _counts(port)
    finally:
        client.close()
        stop_process(worker, grace_s=10)
        c.workers.remove(worker)
    durations = [o.totals.duration_s for o in outputs]
    return {
        "makespan_per_job_s": makespan / jobs,
        "median_job_s": statistics.median(durations) if durations else float("nan"),
        **{f"{k}_per_job": (after[k] - before[k]) / jobs for k in after},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-acks-"))
    c = Cluster(tmp=tmp, latency_ms=args.latency_ms, sentinel=True, concurrency=args.concurrency)
    rows: dict[str, list[dict[str, float]]] = {"0": [], "1": []}
    try:
        for _ in range(args.rounds):
            for acks in ("0", "1"):
                rows[acks].append(_round(c, acks, args.jobs, args.n))
                print(f"acks={acks}: {rows[acks][-1]}", flush=True)
    finally:
        c.close()
    print(f"\n{args.jobs} jobs x {args.rounds} rounds, N={args.n}, latency {args.latency_ms} ms")
    for acks, found in rows.items():
        keys = found[0].keys()
        summary = {k: statistics.median(r[k] for r in found) for k in keys}
        spread = {k: (min(r[k] for r in found), max(r[k] for r in found)) for k in keys}
        print(f"acks={acks}: " + ", ".join(f"{k} {summary[k]:.3f} {spread[k]}" for k in keys))


if __name__ == "__main__":
    main()
