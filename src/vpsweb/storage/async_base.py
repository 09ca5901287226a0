"""The storage seam for asyncio: the interfaces of ``storage.base`` that clients use,
with coroutine methods of the same names, arguments and meaning.

Clients (``AsyncClient``) reach the store only through these; workers, the
dispatcher and the sweeper stay on the sync interfaces (leases, step logs and
submissions have no async implementation: nothing async needs them).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from vpsweb.domain.batch import BatchRecord, BatchTally
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import ProgressEvent, ProgressSnapshot
from vpsweb.storage.base import Event, JobRecord, JobStatus
from vpsweb.storage.batches import BatchWrite, Decide


class AsyncJobStore(abc.ABC):
    """As ``JobStore``: jobs, step outputs and results."""

    @abc.abstractmethod
    async def create(self, plans: list[JobPlan]) -> None: ...

    @abc.abstractmethod
    async def get(self, job_id: str) -> JobRecord | None: ...

    @abc.abstractmethod
    async def status(self, job_id: str) -> JobStatus | None: ...

    @abc.abstractmethod
    async def plan(self, job_id: str) -> JobPlan | None: ...

    @abc.abstractmethod
    async def end(
        self,
        job_id: str,
        status: JobStatus,
        ttl: int,
        *,
        events: list[Event],
        result: str | None = None,
        error: str | None = None,
        error_stage: str | None = None,
    ) -> bool: ...

    @abc.abstractmethod
    async def recent_jobs(self, limit: int = 20) -> list[str]: ...

    @abc.abstractmethod
    async def deadline(self, job_id: str) -> float | None: ...

    @abc.abstractmethod
    async def load_steps(self, job_id: str, keys: list[str]) -> list[str | None]: ...

    @abc.abstractmethod
    async def load_result(self, job_id: str) -> str | None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


IdleCheck = Callable[[], Awaitable[list[ProgressEvent]]]


class AsyncProgressLog(abc.ABC):
    """As ``ProgressLog``: the snapshot and the replayable event stream."""

    @abc.abstractmethod
    async def emit(self, job_id: str, event: Event, ttl: int, *, once: str = "") -> bool: ...

    @abc.abstractmethod
    async def snapshot(self, job_id: str) -> ProgressSnapshot: ...

    @abc.abstractmethod
    def events(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        start: str = "0-0",
        on_idle: IdleCheck | None = None,
    ) -> AsyncIterator[ProgressEvent]:
        """As ``ProgressLog.events``; ``on_idle`` is a coroutine function."""


class AsyncPresence(abc.ABC):
    @abc.abstractmethod
    async def live(self) -> dict[str, list[str]]: ...


class AsyncUsageLog(abc.ABC):
    @abc.abstractmethod
    async def record(self, summary_json: str, counters: dict[str, float], ttl: int) -> None: ...


class AsyncManualAnswers(abc.ABC):
    @abc.abstractmethod
    async def pending(self, job_id: str) -> dict[str, str]: ...

    @abc.abstractmethod
    async def answer(
        self, job_id: str, key: str, text: str, *, stage_keys: list[str], deadline: float, ttl: int
    ) -> str: ...


class AsyncBatches(abc.ABC):
    """As ``storage.batches.Batches`` (``decide`` stays a plain function: it is pure)."""

    @abc.abstractmethod
    async def submit(self, addresses: Sequence[str], decide: Decide) -> BatchWrite: ...

    @abc.abstractmethod
    async def get(self, batch_id: str) -> BatchRecord | None: ...

    @abc.abstractmethod
    async def recent(self, limit: int = 20) -> list[BatchRecord]: ...

    @abc.abstractmethod
    async def tally(self, record: BatchRecord) -> BatchTally: ...

    @abc.abstractmethod
    async def plans(self, job_ids: Sequence[str]) -> list[JobPlan | None]: ...


@dataclass(frozen=True)
class AsyncStorage:
    """A store's parts for asyncio clients."""

    jobs: AsyncJobStore
    progress: AsyncProgressLog
    presence: AsyncPresence
    usage: AsyncUsageLog
    manual: AsyncManualAnswers
    batches: AsyncBatches

    async def close(self) -> None:
        await self.jobs.close()
