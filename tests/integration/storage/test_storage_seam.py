"""The storage seam: the state store and the broker are separate settings, and the
dispatcher hands out each submission once, even when a dispatcher dies."""

from __future__ import annotations

import time

import pytest
import redis

from tests.helpers.jobs import submit
from tests.helpers.redis_server import start_redis
from vpsweb import settings
from vpsweb.client.sync import Client
from vpsweb.config import load_config
from vpsweb.domain.plan import build_plan
from vpsweb.local.processes import start_worker, stop_process
from vpsweb.storage import JobStore, ProgressLog, connect
from vpsweb.storage.redis import RedisJobStore, keys

pytestmark = pytest.mark.integration


def test_redis_implements_the_interfaces(redis_server):
    storage = connect(redis_server.url)
    assert isinstance(storage.jobs, JobStore) and isinstance(storage.progress, ProgressLog)
    storage.close()


@pytest.fixture()
def private_redis():
    """A store no other test's workers dispatch from."""
    server = start_redis()
    yield server
    server.stop()


def test_broker_and_store_on_separate_redis_servers(private_redis, simulator, worker_logs):
    redis_server = private_redis
    broker = start_redis()
    env = {settings.SIMULATOR_URL_ENV: simulator, settings.BROKER_URL_ENV: broker.url}
    worker = start_worker(
        redis_server.url,
        env=env,
        concurrency=4,
        name="split@%h",
        queues=sorted(set(load_config().routing().values())),
        log_path=worker_logs / "split.log",
    )
    try:
        # The client needs only the store: it never talks to the broker.
        with Client(redis_url=redis_server.url) as client:
            out = submit(client, parallel_count=2).result(timeout=60)
        assert out.revision.translation
        on_broker = redis.Redis.from_url(broker.url, decode_responses=True)
        on_store = redis.Redis.from_url(redis_server.url, decode_responses=True)
        assert on_broker.keys("_kombu.binding.*"), "Celery's bindings live on the broker"
        assert not on_broker.keys(keys.job(out.job_id) + "*")
        assert on_store.exists(keys.job(out.job_id), keys.result(out.job_id))
        # Celery's results (the result backend) stay with the state store.
        assert on_store.exists(f"celery-task-meta-{out.job_id}.finalize")
    finally:
        stop_process(worker)
        broker.stop()


def test_a_dead_dispatchers_submissions_are_taken_over(private_redis):
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    store = RedisJobStore(client, claim_idle_ms=300)
    cfg = load_config()
    plans = [
        build_plan(
            {"poem": f"line {i}", "source_lang": "en", "target_lang": "zh-CN"},
            cfg,
            job_id=f"d15ba7c4{i:04d}",
            offline=True,
        )
        for i in range(3)
    ]
    store.create(plans)
    # Dispatcher A reads every submission, then dies without acknowledging them.
    taken: list[str] = []
    while len(taken) < 3:
        taken += [s.job_id for s in store.next_submissions("A", block_ms=200, count=10)]
    assert sorted(taken) == sorted(p.job_id for p in plans)
    # B gets nothing new at once, and the whole batch once A's claim has gone stale.
    other = RedisJobStore(client, claim_idle_ms=300)
    time.sleep(0.5)
    claimed = other.next_submissions("B", block_ms=100, count=10)
    assert sorted(s.job_id for s in claimed) == sorted(p.job_id for p in plans)
    other.ack_submissions(claimed)
    time.sleep(0.5)
    assert other.next_submissions("C", block_ms=100, count=10) == []
