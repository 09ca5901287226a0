"""Commands the state store sees per job, and how fast a cancel reaches the provider.

Measures issue 25's "checks during a call": one job of N=3 on one worker, the
simulator answering every call after ``--latency-ms``; the broker is a redis-server
of its own, so the state store sees only vpsweb's own commands (no BRPOP polling),
and the job's result is read only after its last call (no follower polling).
Commands are counted as clients send them (MONITOR: a script's inner commands cost
no round trip and are not counted; ``INFO commandstats`` counts them too, printed
after). Then a second job is cancelled with its 3 candidate
calls in flight, and the seconds until the simulator saw all 3 abandoned are printed.

    .venv/bin/python bench/checks_during_call.py --latency-ms 1000
    .venv/bin/python bench/checks_during_call.py --latency-ms 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.cluster import Cluster
from tests.helpers.redis_monitor import CommandCounter
from tests.helpers.redis_server import start_redis

IGNORED = ("info", "config|resetstat", "config", "monitor", "ping")


# What a step's checks send: status (and spend) reads, lease renewals (+ status).
CHECKS = ("hget", "hmget", "evalsha:lease_renew.lua", "evalsha:lease_keep.lua")


def commandstats(cluster: Cluster) -> dict[str, int]:
    stats = cluster.store.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=10_000)
    parser.add_argument("--n", type=int, default=3)
    args = parser.parse_args()
    broker = start_redis()
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster(tmp=Path(tmp), latency_ms=args.latency_ms)
        c.broker_url = broker.url
        try:
            c.add_worker()
            client = c.client()
            c.store.config_resetstat()
            counter = CommandCounter(c.store).start()
            started = time.monotonic()
            job = c.submit(client, parallel_count=args.n)
            # Not job.result() at once: its follower reads the job's status and deadline
            # every idle second (stall detection), which is the client's cost, not the
            # worker's. The simulator says when the job's last call is done.
            calls = args.n + 6  # candidates, 2 judges, editor, reviser, 2 revision checks
            c.wait_for(
                lambda: (
                    c.sim_stats()["total_requests"] == calls and c.sim_stats()["in_flight"] == 0
                ),
                600,
                "the job's calls",
            )
            job.result(timeout=60)
            took = time.monotonic() - started
            sent = counter.stop()
            stats = commandstats(c)
            calls = c.sim_stats()["total_requests"]
            call_s = calls * args.latency_ms / 1000
            head = f"latency {args.latency_ms:g} ms, N={args.n}"
            print(f"{head}: job took {took:.1f} s, {calls} calls, {call_s:g} call-seconds")
            checks = sum(sent.get(k, 0) for k in CHECKS)
            print(f"status and lease commands per job: {checks} (hget, hmget, lease scripts)")
            for what, counts in [("sent by clients", sent), ("commandstats", stats)]:
                kept = {k: v for k, v in counts.items() if k not in IGNORED and ":" not in k}
                top = sorted(kept.items(), key=lambda kv: -kv[1])
                print(f"store commands per job ({what}): {sum(kept.values())}")
                print("  " + ", ".join(f"{k} {v}" for k, v in top))

            job = c.submit(client, parallel_count=3)
            c.wait_for(lambda: c.sim_stats()["in_flight"] == 3, 60, "3 calls in flight")
            before = c.sim_stats()["cancelled"]
            assert job.cancel()
            abandoned = c.wait_for(
                lambda: c.sim_stats()["cancelled"] - before == 3, 30, "calls abandoned"
            )
            print(f"cancel: 3 calls in flight abandoned at the simulator within {abandoned:.2f} s")
        finally:
            c.close()
            broker.stop()


if __name__ == "__main__":
    main()
