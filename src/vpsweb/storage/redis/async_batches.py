"""Batches on ``redis.asyncio``: the same keys, commands and order of writes as
``storage.redis.batches`` (queued by the same helpers), for the asyncio client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis

from vpsweb.domain.batch import BatchRecord, BatchTally
from vpsweb.domain.plan import JobPlan
from vpsweb.storage.async_base import AsyncBatches
from vpsweb.storage.batches import MAX_ATTEMPTS, BatchWrite, Decide, Found, tally_of
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.batches import (
    claim_call,
    found_of,
    plans_of,
    queue_jobs,
    queue_record,
    queue_tally,
    queue_undo,
    record_of,
    too_busy,
)
from vpsweb.storage.redis.connection_errors import translating_async
from vpsweb.storage.redis.lua import load_lua
from vpsweb.storage.redis.slots import in_order


@translating_async
class AsyncRedisBatches(AsyncBatches):
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._claim_body = load_lua("addresses_claim.lua")

    async def submit(self, addresses: Sequence[str], decide: Decide) -> BatchWrite:
        names = [keys.address(a) for a in addresses]
        ordered = in_order(self.redis)
        for _ in range(MAX_ATTEMPTS):
            ids = cast(list[str | None], await self.redis.mget(names)) if names else []
            write = decide(await self._look(addresses, ids))
            claim = claim_call(addresses, ids, write)
            pipe = self.redis.pipeline(transaction=False)
            queue_jobs(pipe, write)
            if claim is not None and ordered:
                self._queue_claim(pipe, claim)
            replies = await pipe.execute()
            if claim is not None:
                if not ordered:
                    pipe = self.redis.pipeline(transaction=False)
                    self._queue_claim(pipe, claim)
                    replies = await pipe.execute()
                if not replies[-1]:
                    pipe = self.redis.pipeline(transaction=False)
                    queue_undo(pipe, write)
                    await pipe.execute()
                    continue
            pipe = self.redis.pipeline(transaction=False)
            queue_record(pipe, write)
            await pipe.execute()
            return write
        raise too_busy(addresses)

    def _queue_claim(self, pipe: Any, claim: dict[str, Any]) -> None:
        names, args = claim["keys"], claim["args"]
        pipe.execute_command("EVAL", self._claim_body, len(names), *names, *args)

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
        pipe = self.redis.pipeline(transaction=False)  # one slot each: no MGET
        for batch_id in ids:
            pipe.get(keys.batch(batch_id))
        raw = cast(list[str | None], await pipe.execute())
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
