"""The replica-acknowledgement seam (storage.redis.durability) on real redis-servers: a
primary, and a replica that replicates through a delaying proxy (tests.helpers.lag_proxy).

What is checked is where the data is, never how long a call took: after a guarded write
or a reader's fence returns, the replica already has the write; without acks it does not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from tests.helpers.lag_proxy import LagProxy, replicate_through
from tests.helpers.redis_server import start_redis
from vpsweb import settings
from vpsweb.errors import StoreUnavailable
from vpsweb.local.processes import RedisServer
from vpsweb.redis_target import Durability
from vpsweb.storage import JobStatus
from vpsweb.storage.redis import connect, keys
from vpsweb.storage.redis.async_store import connect_async

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("replica_acks")]

LAG_S = 0.4  # the replica's delay; each WAIT below is shorter, so the seam must wait on
QUICK = Durability(replicas=1, timeout_ms=100)


@dataclass
class Pair:
    primary: RedisServer
    replica: RedisServer
    proxy: LagProxy

    def on_replica(self) -> redis.Redis:
        return redis.Redis(port=self.replica.port, decode_responses=True)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    primary, replica = start_redis(), start_redis()
    proxy = LagProxy(primary.port)
    replicate_through(replica.port, proxy)
    proxy.delay_s = LAG_S
    yield Pair(primary, replica, proxy)
    proxy.close()
    replica.stop()
    primary.stop()


def test_a_lagging_replica_has_the_lease_claim_before_acquire_returns(pair: Pair) -> None:
    guarded = connect(pair.primary.url, durability=QUICK)
    unguarded = connect(pair.primary.url, durability=Durability(replicas=0))
    replica = pair.on_replica()
    try:
        assert unguarded.leases.acquire("job-a", "step", "owner-1", 30)
        assert replica.get(keys.lease("job-a", "step")) is None  # still on its way
        assert guarded.leases.acquire("job-b", "step", "owner-2", 30)
        assert replica.get(keys.lease("job-b", "step")) == "owner-2"
        assert guarded.jobs.save_step("job-b", "out", "paid", 30) == "paid"
        assert replica.get(keys.step("job-b", "out")) == "paid"
        assert guarded.leases.acks.unreplicated == 0
    finally:
        replica.close()
        guarded.close()
        unguarded.close()


def test_a_reader_reports_an_end_only_once_the_replica_has_it(pair: Pair) -> None:
    """The end written without acks (as an old worker would); the reader with acks
    fences before it says so, sync and asyncio, status and terminal event alike."""
    writer = redis.Redis(port=pair.primary.port, decode_responses=True)
    reader = connect(pair.primary.url, durability=QUICK)
    replica = pair.on_replica()
    try:
        writer.hset(keys.job("ended-1"), mapping={"status": "succeeded", "plan": "{}"})
        assert reader.jobs.status("ended-1") is JobStatus.SUCCEEDED
        assert replica.hget(keys.job("ended-1"), "status") == "succeeded"

        writer.xadd(keys.events("ended-2"), {"event": "job_finished", "status": "failed"})
        events = list(reader.progress.events("ended-2", timeout=10))
        assert [e.event for e in events] == ["job_finished"]
        assert replica.xlen(keys.events("ended-2")) == 1

        writer.hset(keys.job("ended-3"), mapping={"status": "cancelled", "plan": "{}"})
        assert asyncio.run(_async_status(pair, "ended-3")) is JobStatus.CANCELLED
        assert replica.hget(keys.job("ended-3"), "status") == "cancelled"
    finally:
        writer.close()
        replica.close()
        reader.close()


async def _async_status(pair: Pair, job_id: str) -> JobStatus | None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv(settings.REDIS_REPLICA_ACKS_ENV, "1")
        env.setenv(settings.REDIS_ACK_TIMEOUT_ENV, "100")
        storage = connect_async(pair.primary.url)
    try:
        return await storage.jobs.status(job_id)
    finally:
        await storage.jobs.close()


def test_a_replica_lagging_past_the_cap_fails_the_write(pair: Pair) -> None:
    storage = connect(pair.primary.url, durability=Durability(replicas=1, timeout_ms=50, cap_s=0.1))
    pair.proxy.delay_s = LAG_S * 5  # raised only: what is queued keeps its order
    try:
        with pytest.raises(StoreUnavailable, match="replication is lagging"):
            storage.leases.acquire("job-c", "step", "owner-3", 30)
    finally:
        storage.close()


def test_with_no_replica_online_a_write_goes_on_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alone = start_redis()
    storage = connect(alone.url, durability=QUICK)
    try:
        with caplog.at_level(logging.WARNING, logger="vpsweb.storage.redis.durability"):
            assert storage.leases.acquire("job-d", "step", "owner-4", 30)
            assert storage.jobs.save_step("job-d", "out", "paid", 30) == "paid"
        assert storage.leases.acks.unreplicated == 2
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1 and "no replica online" in warnings[0]  # once a minute
    finally:
        storage.close()
        alone.stop()
