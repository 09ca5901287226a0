"""Fault injection: the job still finishes, pays each LLM call once, and never hangs.

Each test runs its own cluster (tests/helpers/cluster.py) and is bounded.
Figures (recovery times, call counts) are printed for the reliability docs.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.stage_calls import CALLS_PER_STEP, calls_per_job
from vpsweb.errors import JobFailed
from vpsweb.storage.redis import keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAGES = (
    "Initial Translation",
    "Translation Evaluation",
    "Editor Review",
    "Translator Revision",
    "Revision Check",
)


def by_step(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    diff = Counter(after["by_step"]) - Counter(before["by_step"])
    return dict(sorted(diff.items()))


def kill_consumers(c: Cluster) -> int:
    """Drop the workers' broker connections, as a network blip does: the Redis
    broker's BRPOP clients, or every connection to the RabbitMQ vhost."""
    if c.vhost:
        done = subprocess.run(
            ["rabbitmqctl", "close_all_connections", "-p", c.vhost, "fault test"],
            capture_output=True,
            timeout=60,
        )
        return int(done.returncode == 0)
    killed = 0
    for client in c.store.client_list():
        if client.get("cmd") in ("brpop", "blpop"):
            killed += int(bool(c.store.client_kill_filter(_id=client["id"])))
    return killed


def wait_stage(c: Cluster, job, stage: str, timeout_s: float = 60) -> None:
    c.wait_for(lambda: job.progress().stage == stage, timeout_s, f"job {job.id} reaching {stage}")


@pytest.mark.parametrize("broker", ["redis", "amqp"])
def test_broker_connection_drops_pay_each_step_once(tmp_path: Path, broker: str) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=3000, broker=broker)
    try:
        c.add_worker(name="drop@%h")
        client = c.client()
        before = c.sim_stats()
        job = c.submit(client, parallel_count=3)
        wait_stage(c, job, "Initial Translation")
        time.sleep(1.0)  # the three candidate calls are in flight
        assert kill_consumers(c) >= 1
        wait_stage(c, job, "Editor Review")
        time.sleep(1.0)
        assert kill_consumers(c) >= 1
        out = job.result(timeout=120)
        paid = by_step(before, c.sim_stats())
        log = (tmp_path / "drop.log").read_text()
    finally:
        c.close()
    print(f"\n{broker} connection drops: LLM calls by step {paid}")
    assert paid == {
        "editor_review": 1,
        "evaluation": 2,
        "initial_translation": 3,
        "revision_check": 2,
        "translator_revision": 1,
    }
    assert out.totals.llm_calls == calls_per_job(3) == 9
    # The drops really caused second deliveries, and they waited instead of paying.
    assert log.count("is running in another delivery; waiting for its output") >= 3


def _stagger_jobs(c: Cluster, client) -> list:
    """One job per stage, so that at one moment each is inside a different stage's LLM
    call."""
    jobs = [c.submit(client, parallel_count=2)]
    for stage in STAGES[1:]:
        wait_stage(c, jobs[0], stage)
        jobs.append(c.submit(client, parallel_count=2))
    wait_stage(c, jobs[-1], "Initial Translation")
    time.sleep(0.8)  # every one of them is waiting on the simulator now
    return jobs


@pytest.mark.parametrize(("broker", "bound_s"), [("redis", 120.0), ("amqp", 30.0)])
def test_sigkill_in_every_stage_recovers_without_repaying(
    tmp_path: Path, broker: str, bound_s: float
) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=4000, broker=broker)
    try:
        doomed = c.add_worker(name="doomed@%h")
        client = c.client()
        before = c.sim_stats()
        jobs = _stagger_jobs(c, client)
        in_flight = c.leases()
        steps = {key.split(":")[1] for key in in_flight}
        expected = {"evaluation", "editor_review", "translator_revision", "revision_check"}
        assert {"candidate-0", *expected} <= steps
        c.kill(doomed)
        killed_at = time.monotonic()
        c.add_worker(name="replacement@%h")
        recovery = _recovery_times(c, in_flight, killed_at, bound_s)
        outputs = [job.result(timeout=240) for job in jobs]
        paid = sum(by_step(before, c.sim_stats()).values())
    finally:
        c.close()
    print(
        f"\n{broker}: {len(in_flight)} steps in flight at SIGKILL; running again after "
        f"{min(recovery.values()):.1f}-{max(recovery.values()):.1f}s; {paid} calls paid"
    )
    assert max(recovery.values()) <= bound_s
    # Completed steps were not paid again: every job's own calls, plus exactly one
    # lost call per step that was in flight when its worker died.
    per_job = calls_per_job(2)
    assert [o.totals.llm_calls for o in outputs] == [per_job] * len(STAGES)
    # A step in flight loses all its calls (the judges' two orders run side by side).
    lost = sum(CALLS_PER_STEP[key.split(":")[1].split("-")[0]] for key in in_flight)
    assert paid == len(STAGES) * per_job + lost


def _recovery_times(
    c: Cluster, in_flight: dict[str, str], killed_at: float, bound_s: float
) -> dict[str, float]:
    """Seconds from the kill until each in-flight step was taken by another worker (its
    lease held by a new owner, or its output already stored)."""
    pending = dict(in_flight)
    recovered: dict[str, float] = {}
    deadline = killed_at + bound_s + 30
    while pending and time.monotonic() < deadline:
        now = c.leases()
        for key, old in list(pending.items()):
            job, step = key.split(":")
            stored = c.store.exists(keys.step(job, step))
            if stored or now.get(key, old) != old:
                recovered[key] = time.monotonic() - killed_at
                del pending[key]
        time.sleep(0.2)
    assert not pending, f"never ran again: {sorted(pending)}"
    return recovered


def test_redis_restart_with_aof_mid_job(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=3000, appendonly=True)
    try:
        worker = c.add_worker(name="survivor@%h")
        client = c.client()
        before = c.sim_stats()
        job = c.submit(client, parallel_count=3)
        result: dict[str, Any] = {}

        def follow() -> None:  # a client waiting across both restarts
            try:
                result["events"] = [e.event for e in job.events(timeout=180)]
                result["output"] = job.result(timeout=30)
            except Exception as exc:  # reported by the assertions below
                result["error"] = exc

        follower = threading.Thread(target=follow)
        follower.start()
        wait_stage(c, job, "Initial Translation")
        time.sleep(1.0)
        c.redis.restart(down_s=2)
        wait_stage(c, job, "Editor Review", timeout_s=90)
        time.sleep(1.0)
        c.redis.restart(down_s=2)
        follower.join(200)
        paid = by_step(before, c.sim_stats())
        alive = worker.poll() is None
    finally:
        c.close()
    print(f"\nRedis restarted twice: worker alive {alive}, LLM calls by step {paid}")
    assert "error" not in result, result.get("error")
    assert result["events"][-1] == "job_finished" and result["output"].revision.translation
    assert alive
    assert sum(paid.values()) == calls_per_job(3) and paid["initial_translation"] == 3


def test_llm_faults_over_50_jobs_end_within_their_deadline(tmp_path: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["queue_allowance_s"] = 60
        for mode in d["modes"].values():
            for step in mode["steps"].values():
                step.update(timeout_s=2, retries=3)

    # 429s are no longer faults but quota waits (tests/integration/llm/test_quota_gate.py).
    sim = ("--rate-500", "0.2", "--rate-hang", "0.05")
    c = Cluster(
        tmp=tmp_path,
        latency_ms=50,
        sim_args=(*sim, "--retry-after-ms", "200", "--hang-s", "30", "--seed", "7"),
        concurrency=16,
    )
    try:
        c.add_worker()
        c.add_worker()
        client = c.client()
        jobs = [c.submit(client, parallel_count=3) for _ in range(50)]
        outcomes: Counter[str] = Counter()
        for job in jobs:
            deadline = client.storage.jobs.deadline(job.id)
            try:
                job.result(timeout=300)
                outcomes["succeeded"] += 1
            except JobFailed as exc:
                assert exc.stage in STAGES and exc.cause, exc
                outcomes[f"failed in {exc.stage}"] += 1
            record = job.record()
            assert deadline is not None and record.finished_at is not None
            assert record.finished_at.timestamp() <= deadline
        stats = c.sim_stats()
    finally:
        c.close()
    print(f"\n50 jobs under LLM faults: {dict(outcomes)}; simulator {stats['by_status']}")
    assert sum(outcomes.values()) == 50
    assert outcomes["succeeded"] >= 40


def test_300_jobs_on_two_workers_lose_nothing(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=0, concurrency=16)
    try:
        c.add_worker()
        c.add_worker()
        client = c.client()
        started = time.monotonic()
        jobs = [c.submit(client, parallel_count=3) for _ in range(300)]
        outputs = [job.result(timeout=300) for job in jobs]
        elapsed = time.monotonic() - started
        stats = c.sim_stats()
        # Celery's chord bookkeeping (join lists, counters) is gone once each chord fired.
        leftover = [k for k in c.store.scan_iter("*") if k.endswith((".j", ".t", ".s"))]
    finally:
        c.close()
    print(f"\n300 jobs x N=3 on 2 workers: {elapsed:.1f}s, {stats['total_requests']} calls")
    assert len(outputs) == 300 and all(o.revision.translation for o in outputs)
    assert stats["total_requests"] == 300 * calls_per_job(3)
    assert leftover == []
