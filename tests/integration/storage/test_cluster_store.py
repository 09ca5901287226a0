"""The state store on a real 3-primary Redis Cluster: a job runs end to end with the
broker on a single redis-server (kombu has no Cluster transport), each step paid once.

The storage contract runs on a cluster too (tests/unit/storage/contract); this shows
the whole path: a client submitting to the cluster, a worker's dispatcher reading the
submission lanes, the steps' pipelines and scripts, the result read back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.helpers.jobs import submit
from tests.helpers.redis_cluster import RedisCluster
from tests.helpers.redis_server import start_redis
from tests.helpers.stage_calls import calls_per_job
from vpsweb import settings
from vpsweb.client.sync import Client
from vpsweb.config import load_config
from vpsweb.local.processes import start_worker, stop_process
from vpsweb.storage.redis import keys, redis_client

pytestmark = pytest.mark.integration


@pytest.fixture()
def cluster() -> Iterator[RedisCluster]:
    started = RedisCluster().start()
    yield started
    started.stop()


def test_a_job_runs_with_its_store_on_a_redis_cluster(cluster, simulator, sim_stats, worker_logs):
    broker = start_redis()
    env = {settings.SIMULATOR_URL_ENV: simulator, settings.BROKER_URL_ENV: broker.url}
    worker = start_worker(
        cluster.url,
        env=env,
        concurrency=4,
        name="on-cluster@%h",
        queues=sorted(set(load_config().routing().values())),
        log_path=worker_logs / "on-cluster.log",
    )
    try:
        before = sim_stats()
        with Client(redis_url=cluster.url) as client:
            job = submit(client, parallel_count=2)
            out = job.result(timeout=90)
            assert job.status().value == "succeeded"
        after = sim_stats()
        assert out.revision.translation and len(out.candidates) == 2
        # Every step paid once: the candidates, the judge, the review, the revision.
        assert after["total_requests"] - before["total_requests"] == calls_per_job(2)
        assert out.totals.llm_calls == calls_per_job(2)
        store = redis_client(cluster.url, decode_responses=True)
        # The job's keys are on the cluster, in one slot; none on the broker.
        slots = {store.keyslot(k) for k in (keys.job(job.id), keys.result(job.id))}
        assert store.exists(keys.job(job.id), keys.result(job.id)) == 2 and len(slots) == 1
        assert store.zscore(keys.DEADLINES, job.id) is None  # ended: no deadline left
        on_broker = redis.Redis.from_url(broker.url, decode_responses=True)
        assert not on_broker.keys("vpsweb:*")
        # Celery's results follow the broker's Redis (Celery's backend needs one Redis).
        assert on_broker.exists(f"celery-task-meta-{job.id}.finalize")
        store.close()
        on_broker.close()
    finally:
        stop_process(worker)
        broker.stop()
