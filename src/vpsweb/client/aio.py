"""The asyncio client: ``AsyncClient.submit(...) -> AsyncJob``; ``async for e in job.events()``.

The same methods as the sync client (``vpsweb.client``), as coroutines, driving
the same core (``vpsweb.client.core``: requests, results, answers, the follower)
over the asyncio storage seam (``vpsweb.storage.async_base``: the same keys and Lua
scripts on ``redis.asyncio``). A web process or a user's async app follows many
jobs on one event loop, with no thread per follower, and hears, as the sync
follower does, when no worker consumes a queue its job needs.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from vpsweb import settings
from vpsweb.client.aio_batch import AsyncBatch, batch_record, submit_batch
from vpsweb.client.batch_plans import Entries, Requests, estimate_entries
from vpsweb.client.batching import single
from vpsweb.client.core import (
    Follower,
    Planner,
    answer_accepted,
    check_answer,
    estimate_request,
    log_warning,
    missing_workers,
    needs_spent,
    not_lower,
    pending_prompts,
    request_of,
    result_of,
    valid_job_id,
)
from vpsweb.config import AppConfig
from vpsweb.domain.batch import BatchEstimate, BatchRecord
from vpsweb.domain.estimate import JobEstimate
from vpsweb.domain.glossary import Glossary
from vpsweb.domain.manual_answers import PendingPrompt
from vpsweb.domain.models import (
    Priority,
    StragglerPolicy,
    StrategyOverrides,
    Totals,
    WorkflowMode,
)
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import ProgressEvent, ProgressSnapshot
from vpsweb.domain.result import TranslationOutput
from vpsweb.errors import JobNotFound, VpswebError
from vpsweb.orchestrator import lifecycle_aio
from vpsweb.storage import JobRecord, JobStatus, connect_async
from vpsweb.storage.async_base import AsyncStorage

MAX_CONNECTIONS = 32  # short commands: a burst queues for a connection
MAX_STREAM_CONNECTIONS = 256  # blocking reads: one per job followed at a time
log = logging.getLogger("vpsweb")


class AsyncJob:
    """A handle on a job, as ``vpsweb.client.Job``, with coroutine methods."""

    def __init__(self, client: AsyncClient, job_id: str) -> None:
        self._client = client
        self.id = job_id
        self._highest = 0.0

    def __repr__(self) -> str:
        return f"AsyncJob({self.id!r})"

    async def record(self) -> JobRecord:
        return await self._client.record(self.id)

    async def status(self) -> JobStatus:
        return (await self.record()).status

    async def progress(self) -> ProgressSnapshot:
        """As ``Job.progress``: never lower than this handle read before."""
        await self.record()
        snap = await self._client.storage.progress.snapshot(self.id)
        snap, self._highest = not_lower(snap, self._highest)
        return snap

    async def percent(self) -> float:
        """The job's progress now (0-100, never lower than before)."""
        return (await self.progress()).progress_percent

    async def events(
        self, timeout: float | None = None, *, start: str = "0-0"
    ) -> AsyncIterator[ProgressEvent]:
        """As ``Job.events``: every event from ``start``, then live ones, until the
        terminal event (TimeoutError after ``timeout`` s); with the follower's
        warnings when no live worker consumes a queue the job needs, a stalled job
        failed, and an unreachable store waited for."""
        await self.record()
        follower = Follower(self.id, lambda: self._client.config.routing())

        async def idle() -> list[ProgressEvent]:
            return await self._look(follower)

        stream = self._client.storage.progress.events(
            self.id, timeout=timeout, start=start, on_idle=idle
        )
        async for event in stream:
            for warning in await self._look(follower, event):
                yield warning
            yield event

    async def _look(
        self, follower: Follower, event: ProgressEvent | None = None
    ) -> list[ProgressEvent]:
        """The follower's look at the cluster, when it says one is due."""
        if not follower.begin_check(time.monotonic(), event):
            return []
        storage = self._client.storage
        with contextlib.suppress(VpswebError):
            status = await storage.jobs.status(self.id)
            if follower.stalled(status, await storage.jobs.deadline(self.id), time.time()):
                await lifecycle_aio.stall_job(storage, self.id)
            live = await self._client.live_workers() if follower.wants_workers(status) else None
            return follower.checked(status, live)
        return []

    async def wait(self, timeout: float | None = None) -> JobRecord:
        """As ``Job.wait``: the follower's warnings go to the ``vpsweb`` logger."""
        async for event in self.events(timeout=timeout):
            log_warning(self.id, event, log.log)
        return await self.record()

    async def result(self, timeout: float | None = None) -> TranslationOutput:
        """Wait for the end; the output, or JobFailed / JobCancelled."""
        record = await self.wait(timeout)
        cost = await self.spent() if needs_spent(record) else None
        succeeded = record.status is JobStatus.SUCCEEDED
        raw = await self._client.load_result(self.id) if succeeded else None
        return result_of(record, raw, cost)

    async def cancel(self) -> bool:
        return await self._client.cancel(self.id)

    async def pending(self) -> list[PendingPrompt]:
        record = await self.record()
        if record.status.terminal:
            return []
        return pending_prompts(record, await self._client.storage.manual.pending(self.id))

    async def answer(self, key: str, text: str) -> bool:
        """As ``Job.answer``."""
        record, manual = await self.record(), self._client.storage.manual
        raw = None if record.status.terminal else (await manual.pending(self.id)).get(key)
        waiting = [] if raw is not None else [p.key for p in await self.pending()]
        checked = check_answer(record, key, text, raw, waiting, time.time())
        outcome = await manual.answer(
            self.id,
            key,
            text,
            stage_keys=checked.stage_keys,
            deadline=checked.deadline,
            ttl=checked.ttl,
        )
        moved = answer_accepted(self.id, key, outcome)
        await self._client.storage.progress.emit(self.id, checked.event, checked.ttl)
        return moved

    async def spent(self) -> Totals:
        """As ``Job.spent``."""
        record = await self.record()
        if record.status is JobStatus.SUCCEEDED:
            return (await self.result(timeout=5)).totals
        return await lifecycle_aio.spent(self._client.storage, record.plan)


class AsyncClient(Planner):
    """Options (keyword-only): redis_url (the cluster's state store), config (for
    validation and planning; default: load_config() on first use), max_connections
    (for short commands), max_stream_connections (for the blocking event reads)."""

    def __init__(
        self,
        *,
        redis_url: str,
        config: AppConfig | None = None,
        max_connections: int = MAX_CONNECTIONS,
        max_stream_connections: int = MAX_STREAM_CONNECTIONS,
    ) -> None:
        self._config = config
        self.storage: AsyncStorage = connect_async(
            redis_url,
            max_connections=max_connections,
            max_stream_connections=max_stream_connections,
        )

    @classmethod
    def from_env(cls, *, config: AppConfig | None = None) -> AsyncClient:
        how = "pass AsyncClient(redis_url=...)"
        return cls(redis_url=settings.require_redis_url("the client", instead=how), config=config)

    async def submit_plan(self, plan: JobPlan) -> AsyncJob:
        """As ``Client.submit_plan`` (an idempotency key seen before: that job)."""
        plan = plan.model_copy(update={"created_at": datetime.now(UTC)})
        if plan.request.idempotency_key is None:
            await self.storage.jobs.create([plan])
            return AsyncJob(self, plan.job_id)
        addresses, decide = single(plan)
        return AsyncJob(self, (await self.storage.batches.submit(addresses, decide)).jobs[0])

    async def submit(
        self,
        *,
        poem: str,
        source_lang: str,
        target_lang: str,
        parallel_count: int | None = None,
        workflow_mode: WorkflowMode | str = WorkflowMode.HYBRID,
        title: str = "",
        author: str = "",
        strategy: StrategyOverrides | dict[str, Any] | None = None,
        background_briefing: str | None = None,
        straggler: StragglerPolicy | dict[str, Any] | str | None = None,
        priority: Priority | str | None = None,
        max_cost: float | None = None,
        idempotency_key: str | None = None,
        glossary: Glossary | dict[str, Any] | None = None,
        offline: bool | None = None,
        manual: bool | list[str] = False,
    ) -> AsyncJob:
        """As ``Client.submit``."""
        request = request_of(locals())
        return await self.submit_plan(self.plan(request, offline=offline, manual=manual))

    async def estimate(
        self,
        *,
        poem: str,
        source_lang: str,
        target_lang: str,
        parallel_count: int | None = None,
        workflow_mode: WorkflowMode | str = WorkflowMode.HYBRID,
        title: str = "",
        author: str = "",
        strategy: StrategyOverrides | dict[str, Any] | None = None,
        background_briefing: str | None = None,
        straggler: StragglerPolicy | dict[str, Any] | str | None = None,
        priority: Priority | str | None = None,
        max_cost: float | None = None,
        idempotency_key: str | None = None,
        glossary: Glossary | dict[str, Any] | None = None,
        offline: bool | None = None,
        manual: bool | list[str] = False,
    ) -> JobEstimate:
        """What ``submit`` with these arguments would cost: calls, tokens and cost per
        step and for the job, expected and worst case (``vpsweb.domain.estimate``).
        Enqueues nothing and reads no store; RequestInvalid as ``submit`` raises it,
        except that a max_cost below the estimate is not refused here (compare
        ``estimate.max_cost``, or see ``budget_problems(estimate)``)."""
        request = request_of(locals())
        return estimate_request(request, self.config, offline=offline, manual=manual)

    async def submit_many(
        self, requests: Requests, *, offline: bool | None = None
    ) -> list[AsyncJob]:
        """As ``Client.submit_many``: all validated before any is written."""
        return (await self.submit_batch(requests, force=True, offline=offline)).jobs

    async def submit_batch(
        self,
        requests: Entries,
        *,
        name: str = "",
        budget: float | None = None,
        force: bool = False,
        offline: bool | None = None,
    ) -> AsyncBatch[AsyncJob]:
        """As ``Client.submit_batch``."""
        record = await submit_batch(
            self, requests, name=name, budget=budget, force=force, offline=offline
        )
        return AsyncBatch(self, record, self._job)

    async def batch(self, batch_id: str) -> AsyncBatch[AsyncJob]:
        """As ``Client.batch``."""
        return AsyncBatch(self, await batch_record(self, batch_id), self._job)

    async def batches(self, limit: int = 20) -> list[BatchRecord]:
        return await self.storage.batches.recent(limit)

    async def estimate_batch(
        self, requests: Entries, *, budget: float | None = None, offline: bool | None = None
    ) -> BatchEstimate:
        """As ``Client.estimate_batch`` (reads no store)."""
        return estimate_entries(requests, self.config, offline=offline, budget=budget)

    def _job(self, job_id: str) -> AsyncJob:
        return AsyncJob(self, job_id)

    async def record(self, job_id: str) -> JobRecord:
        """JobNotFound for an id that is malformed or unknown to this store."""
        record = await self.storage.jobs.get(job_id) if valid_job_id(job_id) else None
        if record is None:
            raise JobNotFound(job_id)
        return record

    async def get(self, job_id: str) -> AsyncJob:
        await self.record(job_id)
        return AsyncJob(self, job_id)

    async def cancel(self, job_id: str) -> bool:
        record = await self.record(job_id)
        if record.status.terminal:
            return False
        return await lifecycle_aio.cancel_job(self.storage, job_id, record.plan)

    async def live_workers(self) -> dict[str, list[str]]:
        return await self.storage.presence.live()

    async def missing_workers(self) -> list[str]:
        return missing_workers(await self.live_workers(), self.config.routing())

    async def load_result(self, job_id: str) -> str | None:
        return await self.storage.jobs.load_result(job_id)

    async def recent(self, limit: int = 20) -> list[JobRecord]:
        found = []
        for job_id in await self.storage.jobs.recent_jobs(limit):
            if (record := await self.storage.jobs.get(job_id)) is not None:
                found.append(record)
        return found

    async def close(self) -> None:
        await self.storage.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
