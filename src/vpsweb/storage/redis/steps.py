"""A step's bookkeeping in one pipelined round trip at each end (see StepLog).

The commands and scripts are those of the registry, the progress log and the leases,
sent together: a worker's step costs two round trips to Redis (plus the check before
each LLM call and a lease renewal every keeper round) instead of about eleven. Every
part is idempotent or guarded, so a batch retried after a dropped connection changes
nothing twice. Both batches end with the store's WAIT (when replica acknowledgements
are on): they hold the lease claim and the stored output. A candidate's success under
a straggler quorum is announced on the job signals' channel in the same batch
(storage.signals).

Each script touches one slot: the job's, or (batch_count.lua) the batch's. The writes
to global keys beside them (the deadlines set, a batch's counters) are safe to lose
or to repeat; see the notes in store.py and batch_count.lua.
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
from vpsweb.storage.redis.batches import count_call
from vpsweb.storage.redis.connection_errors import translating
from vpsweb.storage.redis.leases import RedisLeases
from vpsweb.storage.redis.lua import Lua
from vpsweb.storage.redis.progress import RedisProgressLog
from vpsweb.storage.redis.quotas import RedisQuotas
from vpsweb.storage.redis.signals import announce_quietly
from vpsweb.storage.redis.slots import in_order
from vpsweb.storage.redis.store import RedisJobStore
from vpsweb.storage.signals import Signal, SignalKind
from vpsweb.storage.spend import SPENT_FIELD, billed


def stored_args(payload: str, ttl: int) -> list[Any]:
    """step_stored.lua's arguments: the output, and what it was billed."""
    return [payload, ttl, f"{billed(payload).cost:.10f}", SPENT_FIELD]


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
        self._count = Lua(client, "batch_count.lua")

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
            for prior_key in prior_keys:  # GETs: a Cluster's pipeline refuses MGET
                pipe.get(keys.step(job_id, prior_key))
            self.jobs.acks.wait_on(pipe)
            replies = self.jobs.acks.settled(pipe.execute(), job_id, f"the start of {key}")
        status = JobStatus(replies[0]) if replies[0] else None
        # status, mark_running, extend_deadline and its ZADD, the start event if any
        lease_at = 5 if start is not None else 4
        prior = replies[lease_at + 2 :]
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
        later: Signal | None = None  # a Cluster's pipeline refuses PUBLISH
        with self.redis.pipeline(transaction=False) as pipe:
            self._stored(keys=names, args=stored_args(payload, ttl), client=pipe)
            if batch_id is not None:
                self._count(**count_call(batch_id, job_id, key, payload, ttl), client=pipe)
            self.leases.release_on(pipe, job_id, key, owner)
            if item is not None:
                self.progress.candidate_finished_on(pipe, job_id, item, ttl)
                if item.quorum and item.ok:  # it may set the quorum's deadline: say so
                    said = Signal(SignalKind.CANDIDATE, job_id)
                    if in_order(self.redis):
                        pipe.publish(keys.SIGNALS, said.encode())
                    else:
                        later = said
            elif end is not None:
                self.progress.emit_on(pipe, job_id, end, ttl, once=once)
            for done in settle:
                self.quotas.settle_on(pipe, done)
            self.jobs.acks.wait_on(pipe)
            replies = self.jobs.acks.settled(pipe.execute(), job_id, f"the output of {key}")
        if later is not None:
            announce_quietly(self.redis, later)
        return replies[0] if replies[0] is not None else payload
