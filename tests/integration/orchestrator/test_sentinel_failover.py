"""The primary Redis SIGKILLed mid-job, behind Sentinel: the store and the broker follow
the promoted replica, the job succeeds, no worker exits, progress never goes back.

Figures (promotion, the job running again, LLM calls vs the job's totals) are printed
for docs/reliability.md.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.stage_calls import calls_per_job
from vpsweb.storage.redis import keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _stored_steps(c: Cluster, job_id: str) -> int:
    return sum(1 for _ in c.store.scan_iter(keys.step(job_id, "*")))


@pytest.mark.parametrize(
    "stage", ["Initial Translation", "Translation Evaluation", "Translator Revision"]
)
def test_sigkill_the_primary_mid_stage(tmp_path: Path, stage: str) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=3000, sentinel=True, concurrency=4)
    assert c.sentinel is not None
    try:
        workers = [c.add_worker(name="s1@%h"), c.add_worker(name="s2@%h")]
        client = c.client()
        before = c.sim_stats()
        job = c.submit(client, parallel_count=3)
        percents: list[float] = []
        result: dict[str, Any] = {}

        def follow() -> None:  # a client waiting across the failover
            try:
                result["events"] = [e.event for e in job.events(timeout=90)]
                result["output"] = job.result(timeout=30)
            except Exception as exc:  # reported by the assertions below
                result["error"] = exc

        follower = threading.Thread(target=follow)
        follower.start()
        c.wait_for(lambda: job.progress().stage == stage, 60, stage)
        time.sleep(1.0)  # the stage's calls are in flight
        in_flight = len(c.leases())
        stored = _stored_steps(c, job.id)
        killed = c.sentinel.kill_primary()
        promoted_s = c.sentinel.wait_promoted() - killed
        running_again_s: float | None = None
        errors = 0
        while follower.is_alive() and time.monotonic() - killed < 60:
            try:
                percents.append(job.progress().progress_percent)
                if running_again_s is None and _stored_steps(c, job.id) > stored:
                    running_again_s = time.monotonic() - killed
            except Exception:  # the moment of the failover: counted, not fatal
                errors += 1
            time.sleep(0.2)
        follower.join(60)
        stats = c.sim_stats()
        paid = sum((Counter(stats["by_step"]) - Counter(before["by_step"])).values())
        alive = [w.poll() is None for w in workers]
    finally:
        c.close()
    output = result.get("output")
    print(
        f"\nSentinel failover in {stage}: promoted {promoted_s:.1f} s after the kill, "
        f"job running again (a new step stored) after {running_again_s} s; "
        f"{in_flight} steps in flight; "
        f"LLM calls {paid} vs totals.llm_calls "
        f"{output.totals.llm_calls if output else None}; workers alive {alive}; "
        f"{errors} progress reads failed during the failover"
    )
    assert "error" not in result, result.get("error")
    assert result["events"][-1] == "job_finished" and output is not None
    assert output.revision.translation
    assert all(alive)
    assert running_again_s is not None and running_again_s <= 30
    assert percents == sorted(percents), percents
    assert output.totals.llm_calls == calls_per_job(3)
    assert paid <= output.totals.llm_calls + in_flight


def test_vpsweb_worker_starts_from_the_sentinel_variables(tmp_path: Path) -> None:
    """`vpsweb worker` with VPSWEB_REDIS_SENTINELS + VPSWEB_REDIS_MASTER (no URL): it
    reaches the store (its heartbeat) and the broker (it answers a ping) via Sentinel."""
    from tests.helpers.cli import cli_env
    from tests.helpers.sentinel import MASTER, SentinelGroup
    from vpsweb import settings
    from vpsweb.config import load_config
    from vpsweb.local.processes import stop_process
    from vpsweb.storage.redis import redis_client
    from vpsweb.workers.factory import create_app

    group = SentinelGroup().start()
    proc = None
    try:
        env = cli_env(
            {
                settings.REDIS_SENTINELS_ENV: ",".join(
                    f"127.0.0.1:{p}" for p in group.sentinel_ports
                ),
                settings.REDIS_MASTER_ENV: MASTER,
            },
            unset=(settings.REDIS_URL_ENV, settings.BROKER_URL_ENV),
        )
        with open(tmp_path / "worker.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vpsweb.cli",
                    "worker",
                    "--concurrency",
                    "2",
                    "--name",
                    "sv@%h",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        store = redis_client(group.url, decode_responses=True)
        deadline = time.monotonic() + 60
        while not store.exists(keys.WORKERS) and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
        assert store.exists(keys.WORKERS), (tmp_path / "worker.log").read_text()
        app = create_app(group.url, group.url, load_config())
        try:
            replies = app.control.ping(timeout=5)
        finally:
            app.close()
        assert any(name.startswith("sv@") for reply in replies for name in reply), replies
    finally:
        if proc is not None:
            stop_process(proc)
        group.stop()


def test_the_async_store_follows_a_failover() -> None:
    """The web page's store (redis.asyncio's Sentinel pool): reads a job before the
    primary is killed and, once the replica is promoted, reads and follows it there."""
    import asyncio

    from tests.helpers.sentinel import SentinelGroup
    from tests.helpers.storage_backends import sentinel_backend
    from vpsweb.storage import connect_async

    group = SentinelGroup().start()
    try:
        backend = sentinel_backend(group)
        plan = backend.job("5e471e100001")
        assert group.primary is not None
        fence = redis_client_of(group)  # WAIT covers this connection's writes and all before
        fence.set("vpsweb:test:fence", "1")
        assert fence.execute_command("WAIT", 1, 2000) == 1

        async def read_across_the_failover() -> tuple[str, str, float]:
            store = connect_async(group.url)
            try:
                before = await store.jobs.status(plan.job_id)
                killed = group.kill_primary()
                group.wait_promoted()
                while True:  # the pool's old connections fail once, then it re-resolves
                    try:
                        after = await store.jobs.status(plan.job_id)
                        return str(before), str(after), time.monotonic() - killed
                    except Exception:
                        assert time.monotonic() - killed < 30
                        await asyncio.sleep(0.2)
            finally:
                await store.close()

        before, after, took = asyncio.run(read_across_the_failover())
        backend.storage.close()
    finally:
        group.stop()
    print(f"\nasync store: read the job on the promoted replica {took:.1f} s after the kill")
    assert before == after == "queued"


def redis_client_of(group: Any) -> Any:
    from vpsweb.storage.redis import redis_client

    return redis_client(group.url, decode_responses=True)
