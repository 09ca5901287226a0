"""Batches on ``redis.asyncio``: the same keys and commands as ``storage.redis.batches``
(queued by the same helpers), for the asyncio client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis
import redis.asyncio as aioredis

from vpsweb.domain.batch import BatchRecord, BatchTally
from vpsweb.domain.plan import JobPlan
from vpsweb.storage.async_base import AsyncBatches
from vpsweb.storage.batches import MAX_ATTEMPTS, BatchWrite, Decide, Found, tally_of
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.batches import (
    found_of,
    plans_of,
    queue_tally,
    queue_write,
    record_of,
    too_busy,
)
from vpsweb.storage.redis.connection_errors import translating_async


@translating_async
class AsyncRedisBatches(AsyncBatches):
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def submit(self, addresses: Sequence[str], decide: Decide) -> BatchWrite:
        names = [keys.address(a) for a in addresses]
        for _ in range(MAX_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    found: dict[str, Found] = {}
                    if names:
                        await pipe.watch(*names)
                        found = await self._look(addresses, await pipe.mget(names))
                    write = decide(found)
                    pipe.multi()
                    queue_write(pipe, write)
                    await pipe.execute()
                    return write
                except redis.WatchError:
                    continue
        raise too_busy(addresses)

    async def _look(self, addresses: Sequence[str], ids: list[Any]) -> dict[str, Found]:
        jobs = sorted({j for j in ids if j})
        if not jobs:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for job_id in jobs:
            pipe.hget(keys.job(job_id), "status")
        statuses = dict(zip(jobs, await pipe.execute(), strict=True))
        return found_of(addresses, ids, statuses)

    async def get(self, batch_id: str) -> BatchRecord | None:
        return record_of(cast(str | None, await self.redis.get(keys.batch(batch_id))))

    async def recent(self, limit: int = 20) -> list[BatchRecord]:
        ids = cast(list[str], await self.redis.zrevrange(keys.BATCHES_INDEX, 0, limit - 1))
        if not ids:
            return []
        raw = cast(list[str | None], await self.redis.mget([keys.batch(b) for b in ids]))
        return [r for r in map(record_of, raw) if r is not None]

    async def tally(self, record: BatchRecord) -> BatchTally:
        pipe = self.redis.pipeline(transaction=False)
        queue_tally(pipe, record)
        counters, *members = await pipe.execute()
        return tally_of(counters, members)

    async def plans(self, job_ids: Sequence[str]) -> list[JobPlan | None]:
        if not job_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(keys.job(job_id), "plan")
        return plans_of(await pipe.execute())
