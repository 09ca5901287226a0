"""The state store on a real 3-primary Redis Cluster: jobs run end to end with the
broker on a single redis-server (kombu has no Cluster transport), each step paid once.

The storage contract runs on a cluster too (tests/unit/storage/contract); these show
the whole path: a client submitting to the cluster (sync, and asyncio as the web page
does), a worker's dispatcher reading the submission lanes, the steps' pipelines and
scripts, the result read back. One cluster, broker and worker for the module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from tests.helpers.jobs import submit
from tests.helpers.poems import FOG_OPENING
from tests.helpers.redis_cluster import RedisCluster
from tests.helpers.redis_server import start_redis
from tests.helpers.stage_calls import calls_per_job
from vpsweb import settings
from vpsweb.client.aio import AsyncClient
from vpsweb.client.sync import Client
from vpsweb.config import load_config
from vpsweb.local.processes import RedisServer, start_worker, stop_process
from vpsweb.storage.redis import keys, redis_client

pytestmark = pytest.mark.integration


@dataclass
class OnCluster:
    cluster: RedisCluster
    broker: RedisServer


@pytest.fixture(scope="module")
def on_cluster(simulator: str, worker_logs) -> Iterator[OnCluster]:
    cluster, broker = RedisCluster().start(), start_redis()
    env = {settings.SIMULATOR_URL_ENV: simulator, settings.BROKER_URL_ENV: broker.url}
    worker = start_worker(
        cluster.url,
        env=env,
        concurrency=4,
        name="on-cluster@%h",
        queues=sorted(set(load_config().routing().values())),
        log_path=worker_logs / "on-cluster.log",
    )
    yield OnCluster(cluster, broker)
    stop_process(worker)
    broker.stop()
    cluster.stop()


def test_a_job_runs_with_its_store_on_a_redis_cluster(on_cluster, sim_stats):
    url = on_cluster.cluster.url
    before = sim_stats()
    with Client(redis_url=url) as client:
        job = submit(client, parallel_count=2)
        out = job.result(timeout=90)
        assert job.status().value == "succeeded"
    after = sim_stats()
    assert out.revision.translation and len(out.candidates) == 2
    # Every step paid once: the candidates, the judge, the review, the revision.
    assert after["total_requests"] - before["total_requests"] == calls_per_job(2)
    assert out.totals.llm_calls == calls_per_job(2)
    store = redis_client(url, decode_responses=True)
    # The job's keys are on the cluster, in one slot; none on the broker.
    slots = {store.keyslot(k) for k in (keys.job(job.id), keys.result(job.id))}
    assert store.exists(keys.job(job.id), keys.result(job.id)) == 2 and len(slots) == 1
    assert store.zscore(keys.DEADLINES, job.id) is None  # ended: no deadline left
    store.close()
    on_broker = redis.Redis.from_url(on_cluster.broker.url, decode_responses=True)
    assert not on_broker.keys("vpsweb:*")
    # Celery's results follow the broker's Redis (Celery's backend needs one Redis).
    assert on_broker.exists(f"celery-task-meta-{job.id}.finalize")
    on_broker.close()


def test_the_asyncio_client_submits_once_and_follows_on_a_cluster(on_cluster, sim_stats):
    async def run() -> tuple[list[str], list[str]]:
        async with AsyncClient(redis_url=on_cluster.cluster.url) as client:
            ask = {
                "poem": FOG_OPENING,
                "source_lang": "en",
                "target_lang": "zh-CN",
                "parallel_count": 1,
                "idempotency_key": "cluster-once",
                "offline": True,
            }
            first = await client.submit(**ask)
            seen = [e.event.value async for e in first.events(timeout=90)]
            out = await first.result(timeout=30)
            again = await client.submit(**ask)  # the same key: the same job, not paid again
            return [first.id, again.id, out.job_id], seen

    before = sim_stats()
    ids, seen = asyncio.run(run())
    after = sim_stats()
    assert len(set(ids)) == 1
    assert seen[0] == "job_queued" and seen[-1] == "job_finished"
    assert after["total_requests"] - before["total_requests"] == calls_per_job(1)
