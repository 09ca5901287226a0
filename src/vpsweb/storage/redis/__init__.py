"""The Redis store: registry, step outputs, progress; the Lua scripts live beside it."""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from vpsweb.redis_target import RedisTarget, parse_target
from vpsweb.storage.base import Storage
from vpsweb.storage.redis.batches import RedisBatches
from vpsweb.storage.redis.leases import RedisLeases
from vpsweb.storage.redis.manual_answers import RedisManualAnswers
from vpsweb.storage.redis.presence import RedisPresence
from vpsweb.storage.redis.progress import RedisProgressLog
from vpsweb.storage.redis.quotas import RedisQuotas
from vpsweb.storage.redis.signals import RedisSignals
from vpsweb.storage.redis.steps import RedisStepLog
from vpsweb.storage.redis.store import RedisJobStore
from vpsweb.storage.redis.usage import RedisUsageLog

__all__ = [
    "RedisJobStore",
    "RedisLeases",
    "RedisProgressLog",
    "RedisUsageLog",
    "connect",
    "redis_client",
]


def redis_client(url: str, *, where: str = "redis_url", **options: Any) -> redis.Redis:
    """The one way vpsweb opens a synchronous Redis: a plain URL, or the master a
    Sentinel target names (``Sentinel.master_for``: its connections ask Sentinel for
    the master's address whenever they connect, and drop themselves on a READONLY
    answer, so a retried command follows a failover). ``where`` names the URL's source
    in the one-line error a malformed one gives."""
    target = parse_target(url, where)
    if not target.is_sentinel:
        return redis.Redis.from_url(url, **options)
    return _sentinel(target, options).master_for(
        target.master,
        redis_class=redis.Redis,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )


def _sentinel(target: RedisTarget, options: dict[str, Any]) -> redis.sentinel.Sentinel:
    from redis.sentinel import Sentinel

    timeout = options.get("socket_connect_timeout", 5)
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
    }
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    return Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)


def connect(url: str, *, retries: int = 3) -> Storage:
    """Every part on one connection pool (threads may share it).

    ``retries``: how many times a command is retried, with exponential back-off capped
    at 1 s, when Redis is unreachable. Workers ride out a Redis restart (about 30);
    an interactive client fails fast (3) and its event reader reconnects on its own.
    """
    client = redis_client(
        url,
        decode_responses=True,
        health_check_interval=30,
        socket_connect_timeout=5,
        socket_keepalive=True,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    jobs, progress, leases = RedisJobStore(client), RedisProgressLog(client), RedisLeases(client)
    quotas = RedisQuotas(client)
    return Storage(
        jobs=jobs,
        progress=progress,
        leases=leases,
        usage=RedisUsageLog(client),
        presence=RedisPresence(client),
        manual=RedisManualAnswers(client),
        steps=RedisStepLog(client, jobs, progress, leases, quotas),
        batches=RedisBatches(client),
        quotas=quotas,
        signals=RedisSignals(client),
    )
