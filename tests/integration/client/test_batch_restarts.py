"""A batch is stored like a job: it survives its client, its workers and its Redis
restarting (issue 24, "One batch, one id"), with each poem paid once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.poems import FOG, JING_YE_SI
from tests.helpers.stage_calls import calls_per_job
from vpsweb.local.processes import stop_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POEMS = 6


def _requests() -> list[dict[str, Any]]:
    poems = [(FOG, "en", "zh-CN"), (JING_YE_SI, "zh-CN", "en")]
    return [
        {
            "poem": poems[i % 2][0],
            "source_lang": poems[i % 2][1],
            "target_lang": poems[i % 2][2],
            "title": f"poem {i + 1}",
            "parallel_count": 1,
        }
        for i in range(POEMS)
    ]


def test_a_batch_survives_its_client_its_worker_and_redis_restarting(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=400, appendonly=True, concurrency=2)
    try:
        worker = c.add_worker()
        first = c.client()
        batch = first.submit_batch(_requests(), name="restarts", offline=True)
        seen: list[float] = []
        c.wait_for(lambda: batch.progress().counts.succeeded >= 1, 90, "a first poem done")
        seen.append(batch.progress().percent)
        first.close()  # the client goes away
        stop_process(worker, grace_s=30)  # a worker restart: poems in flight finish
        c.redis.restart(down_s=2)
        c.add_worker()
        again = c.client().batch(batch.id)  # a new client, by the batch's id alone
        assert again.record.entries == batch.record.entries
        done: dict[str, Any] = {}

        def follow() -> None:
            try:
                done["events"] = [e.kind for e in again.events(timeout=150)]
            except Exception as exc:  # reported by the assertions below
                done["error"] = exc

        follower = threading.Thread(target=follow)
        follower.start()
        while follower.is_alive():
            seen.append(again.progress().percent)
            follower.join(0.5)
        final = again.progress()
        stats = c.sim_stats()
        paid = stats["accepted"]
    finally:
        c.close()
    assert "error" not in done, done.get("error")
    assert final.counts.succeeded == POEMS and final.percent == 100
    assert seen == sorted(seen), f"progress moved back: {seen}"
    assert done["events"].count("job_succeeded") == POEMS
    # Each poem paid once (a SIGKILL's calls cut off in flight: tests/integration/
    # orchestrator/test_faults.py).
    assert final.calls == POEMS * calls_per_job(1) == paid, stats["by_step"]
