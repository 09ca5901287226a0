"""A step's bookkeeping in one pipelined round trip at each end (see StepLog).

The commands and scripts are those of the registry, the progress log and the leases,
sent together: a worker's step costs two round trips to Redis (plus the check before
each LLM call and a lease renewal every keeper round) instead of about eleven. Every
part is idempotent or guarded, so a batch retried after a dropped connection changes
nothing twice. A candidate's success under a straggler quorum is announced on the
job signals' channel in the same batch (storage.signals).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from vpsweb.domain.permits import Settlement
from vpsweb.storage.base import (
    CandidateEnd,
    Event,
    JobStatus,
    StepLog,
    StepStart,
)
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.connection_errors import translating
from vpsweb.storage.redis.leases import RedisLeases
from vpsweb.storage.redis.lua import Lua
from vpsweb.storage.redis.progress import RedisProgressLog
from vpsweb.storage.redis.quotas import RedisQuotas
from vpsweb.storage.redis.store import RedisJobStore
from vpsweb.storage.signals import Signal, SignalKind
from vpsweb.storage.spend import COST_PREFIX, SPENT_FIELD, billed


def stored_args(payload: str, ttl: int) -> list[Any]:
    """step_stored.lua's arguments: the output, and what it was billed."""
    bill = billed(payload)
    currency = COST_PREFIX + (bill.currency or "?")
    return [payload, ttl, f"{bill.cost:.10f}", SPENT_FIELD, bill.calls, bill.tokens, currency]


@translating
class RedisStepLog(StepLog):
    def __init__(
        self,
        client: redis.Redis,
        jobs: RedisJobStore,
        progress: RedisProgressLog,
        leases: RedisLeases,
        quotas: RedisQuotas,
    ) -> None:
        self.redis, self.jobs, self.progress, self.leases = client, jobs, progress, leases
        self.quotas = quotas
        self._stored = Lua(client, "step_stored.lua")

    def begin(
        self,
        job_id: str,
        key: str,
        *,
        owner: str,
        lease_ttl_s: float,
        deadline: float,
        start: Event | None,
        once: str,
        ttl: int,
        prior_keys: list[str],
    ) -> StepStart:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.job(job_id), "status")
            self.jobs.mark_running_on(pipe, job_id)
            self.jobs.extend_deadline_on(pipe, job_id, deadline)
            if start is not None:
                self.progress.emit_on(pipe, job_id, start, ttl, once=once)
            self.leases.acquire_on(pipe, job_id, key, owner, lease_ttl_s)
            pipe.get(keys.step(job_id, key))  # after the lease: see the note in StepLog
            if prior_keys:
                pipe.mget([keys.step(job_id, k) for k in prior_keys])
            replies: list[Any] = pipe.execute()
        status = JobStatus(replies[0]) if replies[0] else None
        lease_at = 4 if start is not None else 3
        prior = replies[lease_at + 2] if prior_keys else []
        return StepStart(status, replies[lease_at + 1], bool(replies[lease_at]), prior)

    def finish(
        self,
        job_id: str,
        key: str,
        payload: str,
        *,
        owner: str,
        ttl: int,
        end: Event | None,
        once: str,
        item: CandidateEnd | None,
        settle: Sequence[Settlement] = (),
        batch_id: str | None = None,
    ) -> str:
        names = [keys.step(job_id, key), keys.job(job_id)]
        if batch_id is not None:
            names.append(keys.batch_counters(batch_id))
        with self.redis.pipeline(transaction=False) as pipe:
            self._stored(keys=names, args=stored_args(payload, ttl), client=pipe)
            self.leases.release_on(pipe, job_id, key, owner)
            if item is not None:
                self.progress.candidate_finished_on(pipe, job_id, item, ttl)
                if item.quorum and item.ok:  # it may set the quorum's deadline: say so
                    pipe.publish(keys.SIGNALS, Signal(SignalKind.CANDIDATE, job_id).encode())
            elif end is not None:
                self.progress.emit_on(pipe, job_id, end, ttl, once=once)
            for done in settle:
                self.quotas.settle_on(pipe, done)
            replies: list[Any] = pipe.execute()
        return replies[0] if replies[0] is not None else payload
