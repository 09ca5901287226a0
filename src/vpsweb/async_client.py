"""The asyncio client: ``AsyncClient.submit(...) -> AsyncJob``; ``async for e in job.events()``.

The same store, keys and scripts as the sync client (``vpsweb.client``), on
``redis.asyncio``: a web process or a user's async app follows many jobs on one
event loop, with no thread per follower. Validation and planning are the sync
client's (pure functions); the job is written with the same MULTI as
``RedisJobStore``. The rare, short writes that run Lua with side effects in
several parts of the store (cancel, manual answers) reuse the sync client in a
worker thread rather than keep a second copy of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio as aioredis

from vpsweb.client import Client, _request, plan_job, valid_job_id
from vpsweb.config import AppConfig, load_config
from vpsweb.errors import JobCancelled, JobFailed, JobNotFound, ResultExpired
from vpsweb.manual import PendingPrompt
from vpsweb.models import StrategyOverrides, WorkflowMode
from vpsweb.plan import JobPlan
from vpsweb.progress import ProgressEvent
from vpsweb.stages.table import TranslationOutput
from vpsweb.storage import JobRecord, JobStatus
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.store import RedisJobStore, with_request

BLOCK_MS = 5000
# redis-py 8 gives every socket a 5 s read timeout by default: a read that blocks
# for BLOCK_MS needs more, or every quiet job's follower dies of a TimeoutError.
READ_TIMEOUT_S = BLOCK_MS / 1000 + 10
COMMAND_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 32  # short commands: a burst queues for a connection
MAX_STREAM_CONNECTIONS = 256  # blocking reads: one per job followed at a time


class AsyncJob:
    """A handle on a job, as ``vpsweb.client.Job``, with coroutine methods."""

    def __init__(self, client: AsyncClient, job_id: str) -> None:
        self._client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"AsyncJob({self.id!r})"

    async def record(self) -> JobRecord:
        return await self._client.record(self.id)

    async def status(self) -> JobStatus:
        return (await self.record()).status

    async def percent(self) -> float:
        """The job's progress now (0-100, never lower than before)."""
        value = await self._client.redis.hget(keys.progress(self.id), "progress_percent")
        return float(value or 0)

    async def events(
        self, timeout: float | None = None, *, start: str = "0-0"
    ) -> AsyncIterator[ProgressEvent]:
        """Every event from ``start`` (the beginning), then live ones; ends after the
        terminal event. TimeoutError if ``timeout`` seconds pass first."""
        await self.record()
        deadline = None if timeout is None else time.monotonic() + timeout
        last, redis = start, self._client.streams
        while True:
            wait = BLOCK_MS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"job {self.id}: no terminal event within {timeout:g}s")
                wait = max(1, min(wait, int(remaining * 1000)))
            batch = cast(
                list[tuple[str, list[tuple[str, dict[str, str]]]]] | None,
                await redis.xread({keys.events(self.id): last}, block=wait, count=100),
            )
            for _name, entries in batch or []:
                for entry_id, fields in entries:
                    last = entry_id
                    event = ProgressEvent.from_fields(entry_id, fields)
                    yield event
                    if event.terminal:
                        return

    async def result(self, timeout: float | None = None) -> TranslationOutput:
        """Wait for the end; the output, or JobFailed / JobCancelled."""
        async for _event in self.events(timeout=timeout):
            pass
        record = await self.record()
        if record.status is JobStatus.FAILED:
            raise JobFailed(record)
        if record.status is JobStatus.CANCELLED:
            raise JobCancelled(record)
        raw = await self._client.load_result(self.id)
        if raw is None:
            raise ResultExpired(record, f"job {self.id} succeeded but its result has expired")
        return TranslationOutput.model_validate_json(raw)

    async def cancel(self) -> bool:
        return await asyncio.to_thread(self._client.sync.cancel, self.id)

    async def pending(self) -> list[PendingPrompt]:
        return await asyncio.to_thread(self._client.sync.get(self.id).pending)

    async def answer(self, key: str, text: str) -> bool:
        return await asyncio.to_thread(self._client.sync.get(self.id).answer, key, text)


class AsyncClient:
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
        self.redis_url = redis_url
        # Two bounded pools that wait when busy. Short commands never queue behind
        # blocking reads (a page stalled 35 s when one pool held both), and a burst of
        # pages queues for one of a few connections instead of opening hundreds.
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            decode_responses=True,
            max_connections=max_connections,
            timeout=30,
            socket_timeout=COMMAND_TIMEOUT_S,
            socket_connect_timeout=5,
        )
        self.redis = aioredis.Redis(connection_pool=pool)
        self._stream_connections = max_stream_connections
        self._streams: aioredis.Redis | None = None
        self._sync: Client | None = None

    @property
    def streams(self) -> aioredis.Redis:
        """The connections for blocking XREADs (opened on first use). A follower
        waits for one rather than fail: each is released within BLOCK_MS."""
        if self._streams is None:
            pool = aioredis.BlockingConnectionPool.from_url(
                self.redis_url,
                decode_responses=True,
                max_connections=self._stream_connections,
                timeout=None,
                socket_timeout=READ_TIMEOUT_S,
                socket_connect_timeout=5,
            )
            self._streams = aioredis.Redis(connection_pool=pool)
        return self._streams

    @property
    def config(self) -> AppConfig:
        if self._config is None:
            self._config = load_config()
        return self._config

    @property
    def sync(self) -> Client:
        """The sync client, for the few writes done in a thread."""
        if self._sync is None:
            self._sync = Client(redis_url=self.redis_url, config=self.config)
        return self._sync

    def plan(
        self,
        request: dict[str, Any],
        *,
        offline: bool | None = None,
        manual: bool | list[str] = False,
    ) -> JobPlan:
        """Validate and plan (RequestInvalid before anything is written)."""
        return plan_job(request, self.config, offline=offline, manual=manual)

    async def submit_plan(self, plan: JobPlan) -> AsyncJob:
        plan = plan.model_copy(update={"created_at": datetime.now(UTC)})
        pipe = self.redis.pipeline(transaction=True)
        RedisJobStore.create_on(pipe, plan)  # queues the same commands as the sync store
        await pipe.execute()
        return AsyncJob(self, plan.job_id)

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
        offline: bool | None = None,
        manual: bool | list[str] = False,
    ) -> AsyncJob:
        request = _request(
            poem=poem,
            source_lang=source_lang,
            target_lang=target_lang,
            parallel_count=parallel_count,
            workflow_mode=workflow_mode,
            title=title,
            author=author,
            strategy=strategy,
            background_briefing=background_briefing,
        )
        return await self.submit_plan(self.plan(request, offline=offline, manual=manual))

    async def record(self, job_id: str) -> JobRecord:
        if not valid_job_id(job_id):
            raise JobNotFound(job_id)
        data = cast(dict[str, str], await self.redis.hgetall(keys.job(job_id)))
        record = JobRecord.from_hash(job_id, data)
        if record is None:
            raise JobNotFound(job_id)
        return record

    async def get(self, job_id: str) -> AsyncJob:
        await self.record(job_id)
        return AsyncJob(self, job_id)

    async def load_result(self, job_id: str) -> str | None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.result(job_id))
        pipe.hget(keys.job(job_id), "plan")
        raw, plan = cast(list[str | None], await pipe.execute())
        return with_request(raw, plan)

    async def recent(self, limit: int = 20) -> list[JobRecord]:
        ids = cast(list[str], await self.redis.zrevrange(keys.JOBS_INDEX, 0, limit - 1))
        found = []
        for job_id in ids:
            try:
                found.append(await self.record(job_id))
            except JobNotFound:
                continue
        return found

    async def close(self) -> None:
        # The pools were made here, so they are closed here (redis-py leaves a pool
        # it was handed open).
        await self.redis.aclose(close_connection_pool=True)
        if self._streams is not None:
            await self._streams.aclose(close_connection_pool=True)
        if self._sync is not None:
            self._sync.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
