"""Batches in Redis: the record (a string), its counters (a hash the step writes add
to), the index of batches, and the addresses (content and idempotency keys).

A submission reads its addresses (MGET: they share one slot, then one pipeline of the
jobs' statuses), and writes in an order that is safe on a Redis Cluster, where no
transaction spans slots: (1) the new jobs (not yet submitted) with their deadlines,
and, in the same pipeline where it runs in order, (2) addresses_claim.lua, which sets
the addresses only if none changed since they were read (as WATCH/MULTI did); (3) the
record, its counters and index, and the jobs' submissions. A claim that finds an
address changed deletes the jobs of step (1), never submitted, and looks again. A
writer that dies after (2) leaves queued jobs that were never submitted: their
deadlines make the sweeper fail them, and the next submission of the same content
makes new ones. A batch's progress is one pipeline: its counters and one HMGET per
member job. The asyncio twin (``async_batches``) uses the same helpers.
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
from vpsweb.storage.redis.slots import in_order
from vpsweb.storage.redis.store import queue_create, queue_submit
from vpsweb.storage.spend import BATCH_SPENT, COST_PREFIX, SPENT_FIELD, billed


def queue_jobs(pipe: Any, write: BatchWrite) -> None:
    """Queue a submission's writes before its claim on ``pipe`` (sync or asyncio): the
    new jobs (not their submissions) and the reused jobs' retention."""
    if write.plans:
        queue_create(pipe, write.plans)
    for job_id in write.keep:
        for key in (keys.job(job_id), keys.result(job_id), keys.progress(job_id)):
            pipe.expire(key, write.ttl)
        pipe.expire(keys.events(job_id), write.ttl)


def queue_record(pipe: Any, write: BatchWrite) -> None:
    """Queue a submission's writes after its claim on ``pipe`` (sync or asyncio): the
    record, its counters and index, then the new jobs' submissions."""
    ttl = write.ttl
    if (record := write.record) is not None:
        pipe.set(keys.batch(record.batch_id), record.model_dump_json(), ex=ttl)
        counters = keys.batch_counters(record.batch_id)
        budget = "" if record.budget is None else repr(record.budget)
        pipe.hset(counters, mapping={"version": record.version, "budget": budget})
        pipe.expire(counters, ttl)
        pipe.zadd(keys.BATCHES_INDEX, {record.batch_id: record.created_at.timestamp()})
        newest = record.run_started_at.timestamp()
        pipe.zremrangebyscore(keys.BATCHES_INDEX, "-inf", newest - ttl)
    if write.plans:
        queue_submit(pipe, write.plans)


def queue_undo(pipe: Any, write: BatchWrite) -> None:
    """Queue the deletion of a submission's new jobs (written, never submitted) whose
    claim failed, on ``pipe`` (sync or asyncio)."""
    for plan in write.plans:
        job_id = plan.job_id
        for key in (keys.job(job_id), keys.progress(job_id), keys.events(job_id)):
            pipe.delete(key)  # one by one: a Cluster's pipeline refuses a multi-key DEL
        pipe.zrem(keys.DEADLINES, job_id)
        pipe.zrem(keys.JOBS_INDEX, job_id)


def count_call(batch_id: str, job_id: str, key: str, payload: str, ttl: int) -> dict[str, Any]:
    """batch_count.lua's keys and arguments: the job step, and what it was billed."""
    bill = billed(payload)
    currency = COST_PREFIX + (bill.currency or "?")
    return {
        "keys": [keys.batch_counters(batch_id), keys.batch_counted(batch_id)],
        "args": [f"{job_id}|{key}", f"{bill.cost:.10f}", bill.calls, bill.tokens, currency, ttl],
    }


def claim_call(
    addresses: Sequence[str], ids: Sequence[str | None], write: BatchWrite
) -> dict[str, Any] | None:
    """addresses_claim.lua's keys and arguments (None: no address to check or write).
    An address ``decide`` writes that was not looked up is written unchecked ('*')."""
    looked = dict(zip(addresses, ids, strict=True))
    names = [*addresses, *(a for a in write.addresses if a not in looked)]
    if not names:
        return None
    args: list[Any] = [write.ttl]
    for name in names:
        was = (looked[name] or "") if name in looked else "*"
        args += [was, write.addresses.get(name, "")]
    return {"keys": [keys.address(a) for a in names], "args": args}


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
        self._claim = Lua(client, "addresses_claim.lua")
        self._count = Lua(client, "batch_count.lua")

    def submit(self, addresses: Sequence[str], decide: Decide) -> BatchWrite:
        names = [keys.address(a) for a in addresses]
        ordered = in_order(self.redis)
        for _ in range(MAX_ATTEMPTS):
            ids = cast(list[str | None], self.redis.mget(names)) if names else []
            write = decide(self._look(addresses, ids))
            claim = claim_call(addresses, ids, write)
            with self.redis.pipeline(transaction=False) as pipe:
                queue_jobs(pipe, write)
                if claim is not None and ordered:
                    self._claim(**claim, client=pipe)
                replies = pipe.execute()
            if claim is not None:
                claimed = replies[-1] if ordered else self._claim(**claim)
                if not claimed:
                    with self.redis.pipeline(transaction=False) as pipe:
                        queue_undo(pipe, write)
                        pipe.execute()
                    continue
            with self.redis.pipeline(transaction=False) as pipe:
                queue_record(pipe, write)
                pipe.execute()
            return write
        raise too_busy(addresses)

    def _look(self, addresses: Sequence[str], ids: list[str | None]) -> dict[str, Found]:
        """The statuses of the jobs found, in one pipeline."""
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
        with self.redis.pipeline(transaction=False) as pipe:  # one slot each: no MGET
            for batch_id in ids:
                pipe.get(keys.batch(batch_id))
            raw = cast(list[str | None], pipe.execute())
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

    def count_step(self, batch_id: str, job_id: str, key: str, payload: str, ttl: int) -> None:
        self._count(**count_call(batch_id, job_id, key, payload, ttl))

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
