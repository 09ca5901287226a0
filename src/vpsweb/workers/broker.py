"""What each broker needs so that a dead worker's step runs again within seconds.

Redis (the default): a message stays in kombu's "unacked" index while its task
runs and is delivered again once its score there is older than the visibility
timeout. vpsweb keeps that timeout short (a SIGKILLed worker's step is back
within about a minute) and bumps the score of every running step's message while
the step is within its worst case (``execution.Delivery``), so a healthy long
call is not delivered twice.

RabbitMQ: an unacknowledged message returns the moment its consumer's connection
closes, so recovery after a crash takes seconds. Queues are durable quorum queues
with a consumer timeout above the longest step, and publishing is confirmed.

Either way a second delivery is harmless: the step's lease makes it wait for the
first one's output (vpsweb.orchestrator.execution).
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import redis
from celery import Task
from kombu import Exchange, Queue
from kombu.transport import redis as kombu_redis
from redis.sentinel import Sentinel

from vpsweb.config import AppConfig
from vpsweb.redis_sentinel import FollowingConnection
from vpsweb.redis_target import SENTINEL_SCHEME, parse_target

VISIBILITY_TIMEOUT_S = 60
RESTORE_EVERY_S = 5
UNACKED_INDEX = "unacked_index"  # kombu's default key for it
AMQP_HEARTBEAT_S = 10


def broker_kind(url: str) -> str:
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss"):
        return "redis"
    if scheme == SENTINEL_SCHEME:
        return "sentinel"
    if scheme in ("amqp", "amqps", "pyamqp"):
        return "amqp"
    return scheme


class RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, able to reach Redis after its broker connection was lost.

    When the connection drops, Celery clears the transport's client and then closes
    the channel; closing restores the unacknowledged messages, and a task that
    finishes later acknowledges through the same channel. Both need a new connection
    pool, whose parameters kombu 5.7 reads from the cleared client: the
    AttributeError ("'NoneType' object has no attribute 'hostname'") killed the
    worker on every Redis restart with steps in flight. A channel's parameters do not
    change during its life, so they are kept from its first use.
    """

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        kept: dict[bool, dict[str, Any]] = self.__dict__.setdefault("_vpsweb_connparams", {})
        if asynchronous not in kept:
            kept[asynchronous] = super()._connparams(asynchronous=asynchronous)
        return dict(kept[asynchronous])


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel


class SentinelChannel(RedisChannel, kombu_redis.SentinelChannel):
    """kombu's Sentinel channel (the master's address asked of Sentinel on every new
    connection), with the same lost-connection fix as RedisChannel: kombu 5.7 also reads
    the Sentinels' addresses from the cleared client ("'NoneType' object has no attribute
    'alt'" killed both workers at a failover), so they are kept from the first use too.

    Its connections ask Sentinel for the master on every reconnect, not only the first
    (vpsweb.redis_sentinel, redis/redis-py#3874).
    """

    connection_class = FollowingConnection

    def _sentinel_managed_pool(self, asynchronous: bool = False) -> Any:
        kept: list[str] | None = self.__dict__.get("_vpsweb_alt")
        if kept is None:
            kept = self.__dict__["_vpsweb_alt"] = list(self.connection.client.alt)
        params = self._connparams(asynchronous)
        extra = {k: v for k, v in params.items() if k not in ("host", "port")}
        sentinels = [
            (u.hostname or "127.0.0.1", u.port or self.connection.default_port)
            for u in map(urlparse, kept)
            if u.scheme == "sentinel"
        ] or [(params["host"], params["port"])]
        manager = Sentinel(
            sentinels,
            min_other_sentinels=getattr(self, "min_other_sentinels", 0),
            sentinel_kwargs=getattr(self, "sentinel_kwargs", None),
            **extra,
        )
        # kept so that kombu closes its connections to the Sentinels (celery/kombu#1108)
        self.__dict__["_async_sentinel_manager" if asynchronous else "_sentinel_manager"] = manager
        master = {k: extra[k] for k in ("username", "password") if k in extra}
        name = str(getattr(self, "master_name", ""))
        return manager.master_for(name, redis.Redis, **master).connection_pool


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def celery_settings(broker_url: str, cfg: AppConfig) -> dict[str, Any]:
    queues = cfg.queues()
    if broker_kind(broker_url) == "amqp":
        # Above the longest step of any mode (RabbitMQ >= 3.11.15 applies it per
        # queue; older servers need consumer_timeout in rabbitmq.conf, see
        # docs/reliability.md).
        timeout_ms = int(longest_step_s(cfg) * 1.5 * 1000)
        arguments = {"x-queue-type": "quorum", "x-consumer-timeout": timeout_ms}
        return {
            "task_queues": [_queue(q, queue_arguments=arguments) for q in queues],
            "broker_heartbeat": AMQP_HEARTBEAT_S,
            "broker_transport_options": {"confirm_publish": True},
            "broker_url": broker_url,
        }
    options: dict[str, Any] = {
        "visibility_timeout": VISIBILITY_TIMEOUT_S,
        "unacked_restore_interval": RESTORE_EVERY_S,
        "unacked_restore_throttle": 1,
    }
    if broker_kind(broker_url) == "sentinel":
        # kombu's form: sentinel://host:port/db;sentinel://... + the master's name.
        target = parse_target(broker_url, "the broker's URL")
        return {
            "broker_url": target.kombu_url(),
            "broker_transport": f"{__name__}:SentinelTransport",
            "task_queues": [_queue(q) for q in queues],
            "broker_transport_options": {**options, **target.kombu_options()},
            "vpsweb_broker_url": broker_url,
        }
    return {
        "broker_url": broker_url,
        "broker_transport": f"{__name__}:RedisTransport",
        "task_queues": [_queue(q) for q in queues],
        "broker_transport_options": options,
    }


def _queue(name: str, **options: Any) -> Queue:
    """A queue bound to a direct exchange of its own name with its own routing key, so
    that the worker's banner (and RabbitMQ) show each queue with its own binding."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name, **options)


def longest_step_s(cfg: AppConfig) -> float:
    """The worst case of any step in any mode (timeouts x attempts + back-off)."""
    from vpsweb.domain.plan import MAX_BACKOFF_S

    attempts = max(cfg.pipeline.parse_retries, cfg.pipeline.evaluation.judge_retries) + 1
    longest = 0.0
    for mode in cfg.pipeline.modes.values():
        for step in mode.steps.values():
            per_call = step.timeout_s * (step.retries + 1) + MAX_BACKOFF_S * step.retries
            longest = max(longest, per_call * attempts)
    return longest


# --- keeping a running step's message invisible (Redis broker) -------------------------

_clients_lock = threading.Lock()


@lru_cache(maxsize=4)
def _client(broker_url: str) -> redis.Redis:
    from vpsweb.storage.redis import redis_client

    with _clients_lock:
        return redis_client(broker_url, where="the broker's URL", socket_connect_timeout=5)


class RedisDelivery:
    """A Redis-broker message whose unacked-index score is refreshed while its step runs.

    ``XX``: a message that kombu already restored (its connection dropped) is not put
    back into the index; its second delivery waits on the step's lease instead.
    """

    def __init__(self, client: redis.Redis, tag: str) -> None:
        self.client = client
        self.tag = tag

    def renew(self) -> bool:
        self.client.zadd(UNACKED_INDEX, {self.tag: time.time()}, xx=True)
        return True


def delivery_of(task: Task) -> RedisDelivery | None:
    """The message a running task works on, when the broker needs it kept alive."""
    url = task.app.conf.get("vpsweb_broker_url") or task.app.conf.broker_url
    info = getattr(task.request, "delivery_info", None) or {}
    tag = info.get("delivery_tag")
    if not tag or broker_kind(url) not in ("redis", "sentinel"):
        return None
    return RedisDelivery(_client(url), str(tag))
