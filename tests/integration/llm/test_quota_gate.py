"""The providers' quotas, cluster-wide: real Redis, two worker processes, and the
simulator answering 429 with retry-after and x-ratelimit-* headers as providers do."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.poems import POEM
from vpsweb.domain.progress import EventKind

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _no_retries(d: dict[str, Any]) -> None:
    """Steps get no retries at all: a 429 that counted as an attempt would fail them."""
    for mode in d["modes"].values():
        for step in mode["steps"].values():
            step["retries"] = 0


def _limit(**limits: int):
    def edit(d: dict[str, Any], _url: str) -> None:
        d["providers"]["simulator"]["limits"] = limits

    return edit


def _batch(client: Any, n: int, parallel_count: int = 2) -> list[Any]:
    request = {"poem": POEM, "source_lang": "en", "target_lang": "zh-CN"}
    return client.submit_many([request | {"parallel_count": parallel_count}] * n, offline=True)


def _paid_calls(jobs: list[Any]) -> int:
    """LLM calls the results say were made (and paid), over every step."""
    return sum(j.result(timeout=5).totals.llm_calls for j in jobs)


def test_a_declared_rate_is_shared_by_every_worker_and_never_tripped(tmp_path: Path) -> None:
    c = Cluster(
        tmp=tmp_path,
        latency_ms=200,
        sim_args=("--rpm", "600", "--burst", "10"),
        models_edit=_limit(requests_per_minute=600),
        edit=_no_retries,
        concurrency=16,
    )
    try:
        c.add_worker()
        c.add_worker()
        client = c.client()
        started = time.monotonic()
        jobs = _batch(client, 8)
        for job in jobs:
            job.result(timeout=120)
        took = time.monotonic() - started
        stats = c.sim_stats()
        paid = _paid_calls(jobs)
        [state] = client.storage.quotas.state(["simulator"])
        waited = [e for e in jobs[-1].events(timeout=5) if e.event is EventKind.WAITING_FOR_QUOTA]
    finally:
        c.close()
    print(f"\n{paid} calls in {took:.1f}s at 10/s allowed; {stats['throttled']} 429s; {state}")
    # The bench holds the target (at most 1 % 429s: 0 of 360 on a quiet machine); here,
    # on a machine loaded by the whole suite, stalled workers release granted calls in
    # bunches, so a few may still meet the provider's burst (4 of 64, once).
    assert stats["throttled"] <= paid // 10
    assert stats["accepted"] == paid  # every call made once
    assert took >= paid / 10 * 0.9  # the shared allowance held them back: 10 calls/s
    assert state.waits > 0 and state.calls >= paid
    assert waited and "waiting for simulator quota" in waited[0].message


def test_an_undeclared_concurrency_limit_is_learnt_from_429s(tmp_path: Path) -> None:
    c = Cluster(
        tmp=tmp_path,
        latency_ms=300,
        sim_args=("--max-concurrent", "3"),
        edit=_no_retries,
        concurrency=16,
    )
    try:
        c.add_worker()
        c.add_worker()
        client = c.client()
        learning = _batch(client, 6)
        for job in learning:
            job.result(timeout=120)  # a 429 never fails a step: no retries were allowed
        learnt = c.sim_stats()
        [state] = client.storage.quotas.state(["simulator"])
        jobs = _batch(client, 6)  # the same workers, the allowance learnt
        for job in jobs:
            job.result(timeout=120)
        stats = c.sim_stats()
        paid = _paid_calls(learning), _paid_calls(jobs)
    finally:
        c.close()
    after = stats["throttled"] - learnt["throttled"]
    print(f"\n{paid} calls; 429s {learnt['throttled']} learning, {after} after; {state}")
    assert stats["accepted"] == sum(paid)  # every call made once
    assert learnt["throttled"] > 0 and state.throttled == learnt["throttled"]
    assert state.allowance is not None and state.allowance < 6  # learnt: about 3
    # Once learnt, the allowance holds: the slow start's first round is not paid again,
    # and probing one call above 3 costs a 429 every 8 calls or so (+0.5/allowance per
    # success, x0.95 at a 429): at most a fifth of them, where the first batch had a third.
    assert after <= 2 + paid[1] * 0.2


def test_an_interactive_job_goes_before_a_batch_that_fills_every_thread(tmp_path: Path) -> None:
    c = Cluster(
        tmp=tmp_path,
        latency_ms=100,
        sim_args=("--rpm", "300", "--burst", "5"),
        models_edit=_limit(requests_per_minute=300),
        concurrency=4,  # two threads may wait for quota; further batch steps park
    )
    try:
        c.add_worker()
        client = c.client()
        batch = _batch(client, 10)  # 80 calls at 5/s: 16 s
        c.wait_for(lambda: c.sim_stats()["accepted"] >= 10, 30, "the batch under way")
        started = time.monotonic()
        job = c.submit(client, parallel_count=2)
        job.result(timeout=60)
        interactive_s = time.monotonic() - started
        unfinished = sum(1 for j in batch if not j.record().status.terminal)
        for j in batch:  # parked steps come back: every chord still completes
            j.result(timeout=120)
        stats = c.sim_stats()
        paid = _paid_calls([*batch, job])
    finally:
        c.close()
    print(f"\ninteractive job: {interactive_s:.1f}s with {unfinished} batch jobs unfinished")
    # Its 8 calls went ahead of the batch's queue (and its tasks were not stuck behind
    # the batch's in the broker): about 8 / 5 s plus its latency, where the back of
    # the batch's queue was 10 s or more away.
    assert interactive_s < 6
    assert unfinished >= 5
    # As in the declared-rate test: the 1 % target is the bench's; under the suite's
    # load bunched calls may meet the provider's burst (2 of 88, once).
    assert stats["accepted"] == paid and stats["throttled"] <= paid // 10
