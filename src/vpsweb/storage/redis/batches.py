"""Batches in Redis: the record (a string), its counters (a hash the step writes add
to), the index of batches, and the addresses (content and idempotency keys).

A submission WATCHes its addresses, reads them (MGET, then one pipeline of the jobs'
statuses), and writes the record, the new jobs and the addresses in one MULTI: if
another submission wrote one of the addresses in between, EXEC fails and it looks
again. A batch's progress is one pipeline: its counters and one HMGET per member job.
The asyncio twin (``async_batches``) queues the same commands with the same helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis

from vpsweb.domain.batch import BatchRecord, BatchTally
from vpsweb.domain.plan import JobPlan
from vpsweb.errors import StoreUnavailable
from vpsweb.storage.batches import (
    MAX_ATTEMPTS,
    MEMBER_FIELDS,
    Batches,
    BatchWrite,
    Decide,
    Found,
    SpendCheck,
    tally_of,
)
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.connection_errors import translating
from vpsweb.storage.redis.lua import Lua
from vpsweb.storage.redis.store import queue_create
from vpsweb.storage.spend import BATCH_SPENT, SPENT_FIELD


def queue_write(pipe: Any, write: BatchWrite) -> None:
    """Queue a submission's writes on ``pipe`` (a MULTI pipeline, sync or asyncio)."""
    ttl = write.ttl
    if write.plans:
        queue_create(pipe, write.plans)
    if (record := write.record) is not None:
        pipe.set(keys.batch(record.batch_id), record.model_dump_json(), ex=ttl)
        counters = keys.batch_counters(record.batch_id)
        budget = "" if record.budget is None else repr(record.budget)
        pipe.hset(counters, mapping={"version": record.version, "budget": budget})
        pipe.expire(counters, ttl)
        pipe.zadd(keys.BATCHES_INDEX, {record.batch_id: record.created_at.timestamp()})
        newest = record.run_started_at.timestamp()
        pipe.zremrangebyscore(keys.BATCHES_INDEX, "-inf", newest - ttl)
    for name, job_id in write.addresses.items():
        pipe.set(keys.address(name), job_id, ex=ttl)
    for job_id in write.keep:
        for key in (keys.job(job_id), keys.result(job_id), keys.progress(job_id)):
            pipe.expire(key, ttl)
        pipe.expire(keys.events(job_id), ttl)


def found_of(
    addresses: Sequence[str], ids: list[str | None], statuses: dict[str, Any]
) -> dict[str, Found]:
    """Address -> Found, from the addresses' job ids and those jobs' statuses."""
    return {
        a: Found(job_id, statuses.get(job_id) or None)
        for a, job_id in zip(addresses, ids, strict=True)
        if job_id
    }


def queue_tally(pipe: Any, record: BatchRecord) -> None:
    pipe.hgetall(keys.batch_counters(record.batch_id))
    for job_id in record.job_ids:
        pipe.hmget(keys.job(job_id), list(MEMBER_FIELDS))


def record_of(raw: str | None) -> BatchRecord | None:
    return BatchRecord.model_validate_json(raw) if raw else None


def plans_of(raw: Sequence[str | None]) -> list[JobPlan | None]:
    return [JobPlan.model_validate_json(p) if p else None for p in raw]


def check_of(job: Sequence[Any], batch: Sequence[Any], late: Any = None) -> SpendCheck:
    """A SpendCheck from the job's (status, spent), the batch's (spent, budget) and,
    under a quorum, the seconds left (straggler_check.lua's reply)."""
    spent, budget = batch
    return SpendCheck(
        status=job[0] or None,
        job_spent=float(job[1] or 0.0),
        batch_spent=float(spent or 0.0),
        budget=float(budget) if budget else None,
        late_in=float(late) if late is not None and late is not False else None,
    )


def too_busy(addresses: Sequence[str]) -> StoreUnavailable:
    return StoreUnavailable(
        f"{len(addresses)} address(es) kept changing under other submissions for "
        f"{MAX_ATTEMPTS} attempts; nothing was submitted: try again"
    )


@translating
class RedisBatches(Batches):
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._straggler = Lua(client, "straggler_check.lua")

    def submit(self, addresses: Sequence[str], decide: Decide) -> BatchWrite:
        names = [keys.address(a) for a in addresses]
        for _ in range(MAX_ATTEMPTS):
            with self.redis.pipeline(transaction=True) as pipe:
                try:
                    found: dict[str, Found] = {}
                    if names:
                        pipe.watch(*names)
                        found = self._look(addresses, cast(list, pipe.mget(names)))
                    write = decide(found)
                    pipe.multi()
                    queue_write(pipe, write)
                    pipe.execute()
                    return write
                except redis.WatchError:
                    continue
        raise too_busy(addresses)

    def _look(self, addresses: Sequence[str], ids: list[str | None]) -> dict[str, Found]:
        """The statuses of the jobs found, in one pipeline (on another connection: the
        watching one runs each command alone)."""
        jobs = sorted({j for j in ids if j})
        if not jobs:
            return {}
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in jobs:
                pipe.hget(keys.job(job_id), "status")
            statuses = dict(zip(jobs, pipe.execute(), strict=True))
        return found_of(addresses, ids, statuses)

    def get(self, batch_id: str) -> BatchRecord | None:
        return record_of(cast(str | None, self.redis.get(keys.batch(batch_id))))

    def recent(self, limit: int = 20) -> list[BatchRecord]:
        ids = cast(list[str], self.redis.zrevrange(keys.BATCHES_INDEX, 0, limit - 1))
        if not ids:
            return []
        raw = cast(list[str | None], self.redis.mget([keys.batch(b) for b in ids]))
        return [r for r in map(record_of, raw) if r is not None]

    def tally(self, record: BatchRecord) -> BatchTally:
        with self.redis.pipeline(transaction=False) as pipe:
            queue_tally(pipe, record)
            counters, *members = pipe.execute()
        return tally_of(counters, members)

    def plans(self, job_ids: Sequence[str]) -> list[JobPlan | None]:
        if not job_ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(keys.job(job_id), "plan")
            return plans_of(pipe.execute())

    def spend_check(self, job_id: str, batch_id: str, *, late: bool = False) -> SpendCheck:
        with self.redis.pipeline(transaction=False) as pipe:
            if late:
                names = [keys.job(job_id), keys.progress(job_id)]
                self._straggler(keys=names, args=[SPENT_FIELD], client=pipe)
            else:
                pipe.hmget(keys.job(job_id), ["status", SPENT_FIELD])
            pipe.hmget(keys.batch_counters(batch_id), [BATCH_SPENT, "budget"])
            job, batch = pipe.execute()
        if late:
            status, left, spent = job
            return check_of([status, spent], batch, left)
        return check_of(job, batch)
