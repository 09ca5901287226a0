"""A step's bookkeeping at each end (see StepLog), in memory: the same parts' writes,
in one critical section each (stricter than Redis's pipeline, never looser)."""

from __future__ import annotations

from collections.abc import Sequence

from vpsweb.domain.permits import Settlement
from vpsweb.storage.base import CandidateEnd, Event, StepLog, StepStart
from vpsweb.storage.memory.batches import MemoryBatches
from vpsweb.storage.memory.parts import MemoryLeases
from vpsweb.storage.memory.progress import MemoryProgressLog
from vpsweb.storage.memory.quotas import MemoryQuotas
from vpsweb.storage.memory.signals import announce
from vpsweb.storage.memory.store import MemoryJobStore
from vpsweb.storage.signals import Signal, SignalKind
from vpsweb.storage.spend import billed


class MemoryStepLog(StepLog):
    def __init__(
        self,
        jobs: MemoryJobStore,
        progress: MemoryProgressLog,
        leases: MemoryLeases,
        quotas: MemoryQuotas | None = None,
        batches: MemoryBatches | None = None,
    ) -> None:
        self.jobs, self.progress, self.leases, self.quotas = jobs, progress, leases, quotas
        self.batches = batches
        self.space = jobs.space

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
        with self.space.lock:
            status = self.jobs.status(job_id)
            self.jobs.mark_running(job_id, ttl)
            self.jobs.extend_deadline(job_id, deadline)
            if start is not None:
                self.progress.emit(job_id, start, ttl, once=once)
            leased = self.leases.acquire(job_id, key, owner, lease_ttl_s)
            stored = self.jobs.load_step(job_id, key)
            prior = self.jobs.load_steps(job_id, prior_keys)
        return StepStart(status, stored, leased, prior)

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
        with self.space.lock:
            first = self.jobs.load_step(job_id, key) is None
            stored = self.jobs.save_step(job_id, key, payload, ttl)
            if first:  # this call stored it: its cost counts, once
                bill = billed(payload)
                self.jobs.add_spent(job_id, bill.cost)
                if batch_id is not None and self.batches is not None:
                    self.batches.count(batch_id, bill, f"{job_id}|{key}", ttl)
            self.leases.release(job_id, key, owner)
            if item is not None:
                self.progress.count_item(job_id, item, ttl)
                if item.quorum and item.ok:  # as RedisStepLog.finish
                    announce(self.space, Signal(SignalKind.CANDIDATE, job_id))
            elif end is not None:
                self.progress.emit(job_id, end, ttl, once=once)
        if settle and self.quotas is not None:
            self.quotas.settle(settle, alone=False)
        return stored
