"""The Redis store on ``redis.asyncio``: the same keys, commands and Lua scripts as the
sync parts beside it (each call's keys and arguments come from the same helpers).

Two bounded pools that wait when busy: one for short commands, one for the
blocking event reads. Short commands never queue behind blocking reads (a page
stalled 35 s when one pool held both), and a burst of pages queues for one of a
few connections instead of opening hundreds. Replica acknowledgements as in the sync
store (``durability.AsyncReplicaAcks``): the end waits for a replica, and a job read
as ended is fenced once first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import redis
import redis.asyncio as aioredis

from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import ProgressEvent, ProgressSnapshot
from vpsweb.redis_target import Durability, RedisTarget, parse_target
from vpsweb.storage.async_base import (
    AsyncJobStore,
    AsyncManualAnswers,
    AsyncPresence,
    AsyncProgressLog,
    AsyncStorage,
    AsyncUsageLog,
    IdleCheck,
)
from vpsweb.storage.base import Event, JobRecord, JobStatus
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.async_batches import AsyncRedisBatches
from vpsweb.storage.redis.connection_errors import translating_async as _translating
from vpsweb.storage.redis.durability import AsyncReplicaAcks
from vpsweb.storage.redis.lua import load_lua
from vpsweb.storage.redis.manual_answers import answer_call, queue_resume
from vpsweb.storage.redis.presence import live_of
from vpsweb.storage.redis.progress import StreamBatch, emit_call, read_wait, snapshot_of
from vpsweb.storage.redis.slots import in_order
from vpsweb.storage.redis.store import (
    deduplicated,
    end_call,
    queue_create,
    queue_submit,
    with_request,
)
from vpsweb.storage.redis.usage import record_call
from vpsweb.storage.signals import Signal, SignalKind

log = logging.getLogger(__name__)

BLOCK_MS = 1000  # as the sync reader: followers check the cluster about every second
# redis-py 8 gives every socket a 5 s read timeout by default: a blocking read needs
# more, or every quiet job's follower dies of a TimeoutError.
READ_TIMEOUT_S = BLOCK_MS / 1000 + 10
COMMAND_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 32  # short commands: a burst queues for a connection
MAX_STREAM_CONNECTIONS = 256  # blocking reads: one per job followed at a time
_LOST = (redis.ConnectionError, redis.TimeoutError)


class _Lua:
    """A script of this package on the asyncio client (EVALSHA, EVAL after a restart;
    queued as EVAL on a pipeline, as the sync ``Lua``)."""

    def __init__(self, client: Any, name: str) -> None:
        self.body = load_lua(name)
        self._script = client.register_script(self.body)

    async def __call__(self, *, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
        return await self._script(keys=keys, args=args)

    def on(self, pipe: Any, *, keys: Sequence[Any], args: Sequence[Any] = ()) -> None:
        """Queue the script on ``pipe`` (an asyncio pipeline)."""
        pipe.execute_command("EVAL", self.body, len(keys), *keys, *args)  # as lua.Lua


@_translating
class AsyncRedisJobStore(AsyncJobStore):
    def __init__(
        self,
        client: aioredis.Redis,
        streams: aioredis.Redis | None = None,
        *,
        acks: AsyncReplicaAcks | None = None,
    ) -> None:
        self.redis, self._streams = client, streams
        self.acks = acks or AsyncReplicaAcks(client, Durability())
        self._end = _Lua(client, "end.lua")

    async def create(self, plans: list[JobPlan]) -> None:
        if not plans:
            return
        ordered = in_order(self.redis)
        pipe = self.redis.pipeline(transaction=False)
        queue_create(pipe, plans)
        if ordered:
            queue_submit(pipe, plans)
        await pipe.execute()
        if not ordered:  # the submissions after their jobs (see storage.redis.slots)
            pipe = self.redis.pipeline(transaction=False)
            queue_submit(pipe, plans)
            await pipe.execute()

    async def get(self, job_id: str) -> JobRecord | None:
        data = await self.redis.hgetall(keys.job(job_id))
        record = JobRecord.from_hash(job_id, cast(dict[str, str], data))
        await self._fenced(job_id, record.status if record else None)
        return record

    async def status(self, job_id: str) -> JobStatus | None:
        value = await self.redis.hget(keys.job(job_id), "status")
        return await self._fenced(job_id, JobStatus(cast(str, value)) if value else None)

    async def _fenced(self, job_id: str, status: JobStatus | None) -> JobStatus | None:
        if status is not None and status.terminal:
            await self.acks.fence(job_id)
        return status

    async def plan(self, job_id: str) -> JobPlan | None:
        raw = await self.redis.hget(keys.job(job_id), "plan")
        return JobPlan.model_validate_json(raw) if raw else None

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
    ) -> bool:
        redundant: list[str] = []
        if result is not None:
            result, redundant = deduplicated(await self.plan(job_id), job_id, result)
        names, args = end_call(job_id, status, ttl, events, result, error, error_stage)
        # The script and the deadline's ZREM, then WAIT on the same connection (it covers
        # both): one round trip, as the sync store's end.
        pipe = self.redis.pipeline(transaction=False)
        self._end.on(pipe, keys=[*names, *redundant], args=args)
        pipe.zrem(keys.DEADLINES, job_id)  # as the sync store's end
        self.acks.wait_on(pipe)
        ended = bool((await self.acks.settled(await pipe.execute(), job_id, "the end"))[0])
        if ended:  # as RedisJobStore.end: the steps in flight stop now
            try:
                await self.redis.publish(keys.SIGNALS, Signal(SignalKind.ENDED, job_id).encode())
            except redis.RedisError as exc:
                log.warning(
                    "could not announce the end of %s (the keepers will see it): %s", job_id, exc
                )
        return ended

    async def recent_jobs(self, limit: int = 20) -> list[str]:
        return cast(list[str], await self.redis.zrevrange(keys.JOBS_INDEX, 0, limit - 1))

    async def deadline(self, job_id: str) -> float | None:
        value = await self.redis.hget(keys.job(job_id), "deadline_at")
        return float(value) if value else None

    async def load_steps(self, job_id: str, step_keys: list[str]) -> list[str | None]:
        if not step_keys:
            return []
        names = [keys.step(job_id, k) for k in step_keys]
        return cast(list[str | None], await self.redis.mget(names))

    async def load_result(self, job_id: str) -> str | None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.result(job_id))
        pipe.hget(keys.job(job_id), "plan")
        raw, plan = cast(list[str | None], await pipe.execute())
        if raw is not None:  # a result is stored by the job's end
            await self.acks.fence(job_id)
        return with_request(raw, plan)

    async def close(self) -> None:
        # The pools were made here, so they are closed here (redis-py leaves a pool
        # it was handed open).
        for client in (self.redis, self._streams):
            if client is None:
                continue
            if in_order(client):
                await client.aclose(close_connection_pool=True)
            else:  # a cluster's client owns its nodes' pools
                await client.aclose()


@_translating
class AsyncRedisProgressLog(AsyncProgressLog):
    def __init__(
        self,
        client: aioredis.Redis,
        streams: aioredis.Redis,
        *,
        block_ms: int = BLOCK_MS,
        acks: AsyncReplicaAcks | None = None,
    ) -> None:
        self.redis, self.streams, self.block_ms = client, streams, block_ms
        self.acks = acks or AsyncReplicaAcks(client, Durability())
        self._emit = _Lua(client, "emit.lua")

    async def emit(self, job_id: str, event: Event, ttl: int, *, once: str = "") -> bool:
        names, args = emit_call(job_id, event, ttl, once)
        return bool(await self._emit(keys=names, args=args))

    async def snapshot(self, job_id: str) -> ProgressSnapshot:
        data = await self.redis.hgetall(keys.progress(job_id))
        snap = snapshot_of(cast(dict[str, str], data))
        if snap.terminal:
            await self.acks.fence(job_id)
        return snap

    async def events(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        start: str = "0-0",
        on_idle: IdleCheck | None = None,
    ) -> AsyncIterator[ProgressEvent]:
        deadline = None if timeout is None else time.monotonic() + timeout
        last = start
        while True:
            wait = read_wait(self.block_ms, deadline, job_id, timeout)
            batch = await self._read(job_id, last, wait)
            if not batch and on_idle is not None:
                for warning in await on_idle():
                    yield warning
            for _name, entries in batch or []:
                for entry_id, fields in entries:
                    last = entry_id
                    event = ProgressEvent.from_fields(entry_id, fields)
                    if event.terminal:
                        await self._fence(job_id, deadline, timeout)
                    yield event
                    if event.terminal:
                        return

    async def _fence(self, job_id: str, deadline: float | None, timeout: float | None) -> None:
        """As the sync reader's: retried while Redis is unreachable, within ``timeout``."""
        while True:
            try:
                await self.acks.fence(job_id)
                return
            except _LOST:
                wait_ms = read_wait(self.block_ms, deadline, job_id, timeout)
                await asyncio.sleep(min(1.0, wait_ms / 1000))

    async def _read(self, job_id: str, last: str, wait_ms: int) -> StreamBatch:
        """One blocking read; an unreachable Redis reads as nothing new, after a pause,
        so that followers keep waiting (and reconnect) instead of dying."""
        try:
            found = await self.streams.xread({keys.events(job_id): last}, block=wait_ms, count=100)
            return cast(StreamBatch, found)
        except _LOST:
            await asyncio.sleep(min(1.0, wait_ms / 1000))
            return None


@_translating
class AsyncRedisPresence(AsyncPresence):
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def live(self) -> dict[str, list[str]]:
        seconds, micros = cast(tuple[int, int], await self.redis.time())
        now = seconds + micros / 1e6  # Redis's clock, as the sync presence
        names = cast(list[str], await self.redis.zrangebyscore(keys.WORKERS, now, "+inf"))
        if not names:
            return {}
        queues = await self.redis.hmget(keys.WORKER_QUEUES, names)
        return live_of(names, cast(list[str | None], queues))


@_translating
class AsyncRedisUsageLog(AsyncUsageLog):
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._record = _Lua(client, "usage_record.lua")

    async def record(self, summary_json: str, counters: dict[str, float], ttl: int) -> None:
        await self._record(**record_call(summary_json, counters, ttl))


@_translating
class AsyncRedisManualAnswers(AsyncManualAnswers):
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._answer = _Lua(client, "manual_answer.lua")

    async def pending(self, job_id: str) -> dict[str, str]:
        data = await self.redis.hgetall(keys.pending(job_id))
        return cast(dict[str, str], data)

    async def answer(
        self, job_id: str, key: str, text: str, *, stage_keys: list[str], deadline: float, ttl: int
    ) -> str:
        names, args = answer_call(job_id, key, text, stage_keys, deadline, ttl)
        outcome = str(await self._answer(keys=names, args=args))
        if outcome == "resumed":  # as the sync store's answer
            pipe = self.redis.pipeline(transaction=False)
            queue_resume(pipe, job_id, deadline)
            await pipe.execute()
        return outcome


def _sentinel_master(target: RedisTarget, size: int, read_timeout: float) -> aioredis.Redis:
    """The master a Sentinel target names, on a pool of ``size`` connections (redis-py's
    asyncio SentinelConnectionPool: not a blocking one; it re-resolves the master on
    every new connection and drops a connection answered READONLY)."""
    from redis.asyncio.sentinel import Sentinel

    from vpsweb.redis_sentinel import AsyncFollowingConnection

    sentinel_kwargs: dict[str, Any] = {"socket_connect_timeout": 5, "socket_timeout": 5}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(
        target.master,
        db=target.db,
        connection_class=AsyncFollowingConnection,  # asks Sentinel on every reconnect
        **_pool_options(target, size, read_timeout),
    )


def _pool_options(target: RedisTarget, size: int, read_timeout: float) -> dict[str, Any]:
    """What every asyncio pool of the store is opened with, on Sentinel or a Cluster."""
    return {
        "username": target.username,
        "password": target.password,
        "decode_responses": True,
        "max_connections": size,
        "socket_timeout": read_timeout,
        "socket_connect_timeout": 5,
    }


def _cluster(target: RedisTarget, size: int, read_timeout: float) -> aioredis.Redis:
    """A Redis Cluster on ``redis.asyncio``, up to ``size`` connections per node (a burst
    beyond that fails instead of waiting: redis-py's cluster has no blocking pool).
    Typed as ``aioredis.Redis``: it answers every command the parts send (keys.py)."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        **_pool_options(target, size, read_timeout),
    )
    return cast(aioredis.Redis, cluster)


def connect_async(
    url: str,
    *,
    max_connections: int = MAX_CONNECTIONS,
    max_stream_connections: int = MAX_STREAM_CONNECTIONS,
) -> AsyncStorage:
    """Every part on two bounded pools (opened on first use; no I/O here). A follower
    waits for a stream connection rather than fail: each is released within BLOCK_MS.
    The replica acknowledgements are the environment's (settings.durability)."""
    from vpsweb.settings import durability as durability_from_env

    target = parse_target(url, "redis_url")
    wanted = durability_from_env(target)

    def pool(size: int, timeout: float | None, read_timeout: float) -> aioredis.Redis:
        if target.is_cluster:
            return _cluster(target, size, read_timeout)
        if target.is_sentinel:
            return _sentinel_master(target, size, read_timeout)
        made = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            max_connections=size,
            timeout=timeout,
            socket_timeout=read_timeout,
            socket_connect_timeout=5,
        )
        return aioredis.Redis(connection_pool=made)

    client = pool(max_connections, 30, COMMAND_TIMEOUT_S)
    streams = pool(max_stream_connections, None, READ_TIMEOUT_S)
    acks = AsyncReplicaAcks(client, wanted)
    return AsyncStorage(
        jobs=AsyncRedisJobStore(client, streams, acks=acks),
        progress=AsyncRedisProgressLog(client, streams, acks=acks),
        presence=AsyncRedisPresence(client),
        usage=AsyncRedisUsageLog(client),
        manual=AsyncRedisManualAnswers(client),
        batches=AsyncRedisBatches(client),
    )
