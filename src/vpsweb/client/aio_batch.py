"""``AsyncBatch``: ``vpsweb.client.sync_batch.Batch`` for the asyncio client, with
coroutine methods of the same names and parameters over the asyncio storage seam; the
decisions are ``client.batching``'s, shared with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Generic, Protocol, TypeVar

from vpsweb.client.batching import (
    Entries,
    follow_every_s,
    member_named,
    prepare_resume,
    prepare_submit,
    result_for,
    resumable,
    unfinished,
)
from vpsweb.client.core import valid_job_id
from vpsweb.config import AppConfig
from vpsweb.domain.batch import (
    BatchEvent,
    BatchProgress,
    BatchRecord,
    BatchResult,
    BatchTally,
    BatchWatch,
    overdue_jobs,
    progress_of,
)
from vpsweb.errors import BatchNotFound, VpswebError
from vpsweb.orchestrator.lifecycle_aio import cancel_job, stall_job
from vpsweb.storage.async_base import AsyncStorage

STALL_EVERY_S = 3.0  # how often it looks for members past their deadline
J = TypeVar("J")


class Owner(Protocol):
    """What a batch needs of its client: the store, and the config to plan with."""

    @property
    def storage(self) -> AsyncStorage: ...
    @property
    def config(self) -> AppConfig: ...


async def submit_batch(
    owner: Owner,
    entries: Entries,
    *,
    name: str,
    budget: float | None,
    force: bool,
    offline: bool | None,
) -> BatchRecord:
    """As ``sync_batch.submit_batch``."""
    submission = prepare_submit(
        entries, owner.config, name=name, budget=budget, force=force, offline=offline
    )
    written = await owner.storage.batches.submit(submission.addresses(), submission.decide)
    assert written.record is not None
    return written.record


async def batch_record(owner: Owner, batch_id: str) -> BatchRecord:
    record = await owner.storage.batches.get(batch_id) if valid_job_id(batch_id) else None
    if record is None:
        raise BatchNotFound(batch_id)
    return record


class AsyncBatch(Generic[J]):
    """As ``Batch``; ``J``: ``AsyncJob``."""

    def __init__(self, owner: Owner, record: BatchRecord, handle: Callable[[str], J]) -> None:
        self._owner, self._record, self._handle = owner, record, handle

    def __repr__(self) -> str:
        return f"AsyncBatch({self.id!r}, {len(self._record.entries)} jobs)"

    @property
    def id(self) -> str:
        return self._record.batch_id

    @property
    def record(self) -> BatchRecord:
        """The record as last read (``progress`` and ``events`` re-read it when a resume
        elsewhere changed it)."""
        return self._record

    @property
    def jobs(self) -> list[J]:
        """A handle on each member's job, in the batch's order."""
        return [self._handle(m.job_id) for m in self._record.entries]

    async def _tally(self) -> BatchTally:
        """One read of the batch (and of its record again, when a resume elsewhere
        changed it: the counters say so)."""
        batches = self._owner.storage.batches
        tally = await batches.tally(self._record)
        if tally.version > self._record.version:
            self._record = await batch_record(self._owner, self.id)
            tally = await batches.tally(self._record)
        return tally

    def _every(self) -> float:
        return follow_every_s(len(self._record.entries))

    async def progress(self) -> BatchProgress:
        """As ``Batch.progress``: one round trip whatever the batch's size."""
        return progress_of(self._record, await self._tally(), time.time())

    async def events(self, timeout: float | None = None) -> AsyncIterator[BatchEvent]:
        """As ``Batch.events``."""
        watch = BatchWatch()
        deadline = None if timeout is None else time.monotonic() + timeout
        looked = time.monotonic()
        while True:
            tally = await self._tally()
            for event in watch.update(self._record, tally):
                yield event
            if watch.done(self._record):
                return
            if time.monotonic() - looked >= STALL_EVERY_S:
                looked = time.monotonic()
                await self._stall(overdue_jobs(self._record, tally, time.time()))
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"batch {self.id} did not finish within {timeout:g}s")
            await asyncio.sleep(self._every())

    async def _stall(self, overdue: list[str]) -> None:
        for job_id in overdue:  # a store briefly away: the next look tries again
            with contextlib.suppress(VpswebError):
                await stall_job(self._owner.storage, job_id)

    async def results(self, timeout: float | None = None) -> AsyncIterator[BatchResult]:
        """As ``Batch.results``."""
        async for event in self.events(timeout):
            if event.terminal:
                raw = None
                if event.kind == "job_succeeded":
                    raw = await self._owner.storage.jobs.load_result(event.job_id)
                yield result_for(member_named(self._record, event.name), event, raw)

    async def cancel(self) -> int:
        """As ``Batch.cancel``."""
        storage = self._owner.storage
        jobs = unfinished(self._record, await self._tally())
        plans = await storage.batches.plans(jobs)
        cancelled = 0
        for job_id, plan in zip(jobs, plans, strict=True):
            if plan is not None:
                cancelled += await cancel_job(storage, job_id, plan)
        return cancelled

    async def resume(self, *, force: bool = False, budget: float | None = None) -> AsyncBatch[J]:
        """As ``Batch.resume``."""
        self._record = await batch_record(self._owner, self.id)
        batches = self._owner.storage.batches
        tally = await batches.tally(self._record)
        slots = resumable([s.status for s in tally.members])
        if not slots and budget in (None, self._record.budget):
            return self  # nothing to write
        plans = await batches.plans([self._record.entries[i].job_id for i in slots])
        submission = prepare_resume(
            self._record, tally, plans, slots, self._owner.config, force=force, budget=budget
        )
        written = await batches.submit(submission.addresses(), submission.decide)
        assert written.record is not None
        self._record = written.record
        return self
