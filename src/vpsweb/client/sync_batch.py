"""``Batch``: a handle on a batch of jobs (``Client.submit_batch``, ``Client.batch``).

Following a batch polls one read of it (``Batches.tally``: its counters and every
member job's status, one round trip whatever its size) rather than following each
job's event stream, so that a display of 500 jobs costs what a display of one does.
The decisions are ``client.batching``'s (shared with ``AsyncBatch``); here are the
store's reads and writes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
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
from vpsweb.orchestrator.lifecycle import cancel_job, stall_job
from vpsweb.storage import Storage

STALL_EVERY_S = 3.0  # how often it looks for members past their deadline
J = TypeVar("J")


class Owner(Protocol):
    """What a batch needs of its client: the store, and the config to plan with."""

    @property
    def storage(self) -> Storage: ...
    @property
    def config(self) -> AppConfig: ...


def submit_batch(
    owner: Owner,
    entries: Entries,
    *,
    name: str,
    budget: float | None,
    force: bool,
    offline: bool | None,
) -> BatchRecord:
    """Plan, decide and write a new batch (see ``Client.submit_batch``)."""
    submission = prepare_submit(
        entries, owner.config, name=name, budget=budget, force=force, offline=offline
    )
    written = owner.storage.batches.submit(submission.addresses(), submission.decide)
    assert written.record is not None
    return written.record


def batch_record(owner: Owner, batch_id: str) -> BatchRecord:
    record = owner.storage.batches.get(batch_id) if valid_job_id(batch_id) else None
    if record is None:
        raise BatchNotFound(batch_id)
    return record


class Batch(Generic[J]):
    """A handle on a batch; re-creatable anywhere from its id (``Client.batch``).
    ``J``: the client's job handle (``Job``)."""

    def __init__(self, owner: Owner, record: BatchRecord, handle: Callable[[str], J]) -> None:
        self._owner, self._record, self._handle = owner, record, handle

    def __repr__(self) -> str:
        return f"Batch({self.id!r}, {len(self._record.entries)} jobs)"

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

    def _tally(self) -> BatchTally:
        """One read of the batch (and of its record again, when a resume elsewhere
        changed it: the counters say so)."""
        batches = self._owner.storage.batches
        tally = batches.tally(self._record)
        if tally.version > self._record.version:
            self._record = batch_record(self._owner, self.id)
            tally = batches.tally(self._record)
        return tally

    def _every(self) -> float:
        return follow_every_s(len(self._record.entries))

    def progress(self) -> BatchProgress:
        """Counts, calls, tokens and cost so far, ETA and the running jobs: one round
        trip whatever the batch's size."""
        return progress_of(self._record, self._tally(), time.time())

    def events(self, timeout: float | None = None) -> Iterator[BatchEvent]:
        """Each member's job_started, then job_succeeded, job_failed (with its cause) or
        job_cancelled, once each, as they happen (jobs that had ended: at once); ends
        when every member's job has ended. TimeoutError if ``timeout`` seconds pass
        first. A member past its deadline with no worker left to end it is failed as
        stalled (as ``Job.events`` does), so following always ends."""
        watch = BatchWatch()
        deadline = None if timeout is None else time.monotonic() + timeout
        looked = time.monotonic()
        while True:
            tally = self._tally()
            yield from watch.update(self._record, tally)
            if watch.done(self._record):
                return
            if time.monotonic() - looked >= STALL_EVERY_S:
                looked = time.monotonic()
                self._stall(overdue_jobs(self._record, tally, time.time()))
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"batch {self.id} did not finish within {timeout:g}s")
            time.sleep(self._every())

    def _stall(self, overdue: list[str]) -> None:
        for job_id in overdue:  # a store briefly away: the next look tries again
            with contextlib.suppress(VpswebError):
                stall_job(self._owner.storage, job_id)

    def results(self, timeout: float | None = None) -> Iterator[BatchResult]:
        """Each member's result as its job ends (the output, or why there is none)."""
        for event in self.events(timeout):
            if event.terminal:
                raw = None
                if event.kind == "job_succeeded":
                    raw = self._owner.storage.jobs.load_result(event.job_id)
                yield result_for(member_named(self._record, event.name), event, raw)

    def cancel(self) -> int:
        """Cancel every member job not ended (a job reused from another batch too):
        none makes another LLM call; finished ones keep their results. Returns how many
        were cancelled."""
        storage = self._owner.storage
        jobs = unfinished(self._record, self._tally())
        plans = storage.batches.plans(jobs)
        return sum(
            cancel_job(storage, job_id, plan)
            for job_id, plan in zip(jobs, plans, strict=True)
            if plan is not None
        )

    def resume(self, *, force: bool = False, budget: float | None = None) -> Batch[J]:
        """Give the members whose job failed, was cancelled or expired a job again (the
        others keep theirs), as one write; this batch (same id) is returned, its record
        a version further. Content addressing as in ``submit_batch`` (``force``: new
        jobs whatever was translated already). ``budget``: a new budget for the batch
        (default: the one it had; its running jobs see it at their next call), counting
        what it spent; RequestInvalid if the estimate of the new jobs does not fit."""
        self._record = batch_record(self._owner, self.id)
        batches = self._owner.storage.batches
        tally = batches.tally(self._record)
        slots = resumable([s.status for s in tally.members])
        if not slots and budget in (None, self._record.budget):
            return self  # nothing to write
        plans = batches.plans([self._record.entries[i].job_id for i in slots])
        submission = prepare_resume(
            self._record, tally, plans, slots, self._owner.config, force=force, budget=budget
        )
        written = batches.submit(submission.addresses(), submission.decide)
        assert written.record is not None
        self._record = written.record
        return self
