"""Checks during a call (issue 25): while a worker's LLM calls are in flight, the state
store sees about one round trip per call per keeper round (5 s), not a status read
per call every half second; and a cancel still abandons the calls at once.

A real worker, a real redis-server as the state store (MONITOR counts what the
worker sends, a script's inner commands aside; the broker is a redis-server of its
own, so its polling is not counted), and the simulator answering each call after 8 s.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.helpers.cluster import Cluster
from tests.helpers.redis_monitor import CommandCounter
from tests.helpers.redis_server import start_redis
from vpsweb.orchestrator.keeper import Keeper

LATENCY_MS = 8_000
KEEPER_S = Keeper().every_s


def test_calls_in_flight_cost_a_round_trip_per_keeper_round_and_a_cancel_stops_them(
    tmp_path: Path,
) -> None:
    broker = start_redis()
    c = Cluster(tmp=tmp_path, latency_ms=LATENCY_MS)
    c.broker_url = broker.url
    try:
        c.add_worker()
        job = c.submit(c.client(), parallel_count=3)
        c.wait_for(lambda: c.sim_stats()["in_flight"] == 3, 30, "three candidate calls in flight")
        counter = CommandCounter(c.store).start()
        started = time.monotonic()
        # The candidates' calls run their course; the evaluation's two judges start.
        c.wait_for(
            lambda: c.sim_stats()["total_requests"] == 5 and c.sim_stats()["in_flight"] == 2,
            30,
            "the judges' calls in flight",
        )
        window_s = time.monotonic() - started
        sent = counter.stop()
        before = c.sim_stats()
        assert job.cancel()
        abandoned = c.wait_for(
            lambda: c.sim_stats()["cancelled"] - before["cancelled"] == 2, 10, "calls abandoned"
        )
        after = c.sim_stats()
    finally:
        c.close()
        broker.stop()
    renewals = sent.get("evalsha:lease_keep.lua", 0) + sent.get("evalsha:lease_renew.lua", 0)
    status_reads = sent.get("hget", 0) + sent.get("hmget", 0)
    per_call_s = (renewals + status_reads) / (3 * window_s)
    print(f"\n{window_s:.1f} s of 3 calls in flight: {sent}")
    print(f"status and lease commands per call-second: {per_call_s:.2f}")
    print(f"cancel: 2 calls in flight abandoned within {abandoned:.2f} s")
    # Status reads: the evaluation's first batch, none per call-second (per-call polling
    # sent one per call every 0.5 s: about 45 here).
    assert status_reads <= 3
    # Each call's lease renewal, which reads the job's status with it, once per keeper
    # round (the first one twice: a script new to this Redis is sent again after
    # NOSCRIPT).
    rounds = window_s / KEEPER_S + 1
    assert 0 < sent.get("evalsha:lease_keep.lua", 0) <= 3 * rounds + 1
    assert after["total_requests"] == before["total_requests"]  # nothing sent after the cancel
