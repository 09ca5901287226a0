"""The Redis store: registry, step outputs, progress; the Lua scripts live beside it."""

from __future__ import annotations

from typing import Any, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from vpsweb.redis_target import Durability, RedisTarget, parse_target
from vpsweb.storage.base import Storage
from vpsweb.storage.redis.batches import RedisBatches
from vpsweb.storage.redis.durability import ReplicaAcks
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
    """The one way vpsweb opens a synchronous Redis: a plain URL, the master a
    Sentinel target names (``Sentinel.master_for``: its connections ask Sentinel for
    the master's address whenever they connect (FollowingConnection: on every path that
    connects, redis/redis-py#3874), and drop themselves on a READONLY answer, so a
    retried command follows a failover), or a Redis Cluster (redis-py's ``RedisCluster``:
    each command goes to the node of its keys' slot). ``where`` names the URL's source
    in the one-line error a malformed one gives."""
    target = parse_target(url, where)
    if target.is_cluster:
        return _cluster(target, options)
    if not target.is_sentinel:
        return redis.Redis.from_url(url, **options)
    from vpsweb.redis_sentinel import FollowingConnection

    return _sentinel(target, options).master_for(
        target.master,
        redis_class=redis.Redis,
        connection_class=FollowingConnection,  # asks Sentinel on every reconnect
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )


def _cluster(target: RedisTarget, options: dict[str, Any]) -> redis.Redis:
    """A ``RedisCluster`` from some of its nodes. Typed as ``redis.Redis``: it answers
    every command the store's parts send (their keys are laid out for it, keys.py);
    per-connection options it does not take (health checks, retry_on_error) are left
    out, and its own retry covers MOVED, ASK and a node that went away."""
    from redis.cluster import ClusterNode, RedisCluster

    allowed = {k: v for k, v in options.items() if k not in ("health_check_interval",)}
    allowed.pop("retry_on_error", None)
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        username=target.username,
        password=target.password,
        **allowed,
    )
    return cast(redis.Redis, cluster)


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


CLIENT_RETRIES = 3
SENTINEL_CLIENT_RETRIES = 12  # about 8.5 s of back-off: a Sentinel failover takes 2-5 s


def connect(
    url: str, *, retries: int | None = None, durability: Durability | None = None
) -> Storage:
    """Every part on one connection pool (threads may share it).

    ``retries``: how many times a command is retried, with exponential back-off capped
    at 1 s, when Redis is unreachable. Workers ride out a Redis restart (about 30);
    an interactive client fails fast (3) and its event reader reconnects on its own,
    but behind Sentinel it rides out a failover (12), so that a submission or a read
    made during one waits for the new master instead of failing.
    ``durability``: how many replicas acknowledge the writes that guard billing and
    endings (storage.redis.durability); default: from the environment
    (settings.durability: one behind Sentinel, none for a plain URL).
    """
    from vpsweb.settings import durability as durability_from_env

    target = parse_target(url, "redis_url")
    wanted = durability if durability is not None else durability_from_env(target)
    if retries is None:
        retries = SENTINEL_CLIENT_RETRIES if target.sentinels else CLIENT_RETRIES
    client = redis_client(
        url,
        decode_responses=True,
        health_check_interval=30,
        socket_connect_timeout=5,
        socket_keepalive=True,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    acks = ReplicaAcks(client, wanted)
    jobs = RedisJobStore(client, acks=acks)
    progress, leases = RedisProgressLog(client, acks=acks), RedisLeases(client, acks=acks)
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
