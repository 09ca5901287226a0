"""Signals over Redis pub/sub: one channel (``keys.SIGNALS``) for every job.

A channel is not a key: PUBLISH reaches the subscribers of every node of a Redis
Cluster, and it is replicated, so a subscriber on a replica hears it too. A
subscription lost with its connection is made again by ``next``; what was sent in
between is lost, which the keeper's lease round covers (see storage.signals).
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from vpsweb.errors import StoreUnavailable
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.connection_errors import describe, translating
from vpsweb.storage.signals import Signal, SignalFeed, Signals

log = logging.getLogger(__name__)


def announce_quietly(client: redis.Redis, signal: Signal) -> None:
    """Announce after a write that already happened (a job's end): a publish that
    fails must not make the write look failed; the keeper's round sees the end."""
    try:
        client.publish(keys.SIGNALS, signal.encode())
    except redis.RedisError as exc:
        log.warning("could not announce %s (the keepers will see it): %s", signal.encode(), exc)


@translating
class RedisSignals(Signals):
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def announce(self, signal: Signal) -> None:
        self.announce_on(self.redis, signal)

    def announce_on(self, client: Any, signal: Signal) -> Any:
        """PUBLISH on ``client`` (this store's connection, or a pipeline)."""
        return client.publish(keys.SIGNALS, signal.encode())

    def subscribe(self) -> SignalFeed:
        return RedisSignalFeed(self.redis)


class RedisSignalFeed(SignalFeed):
    """A redis-py PubSub (its own connection from the store's pool, Sentinel's master
    included), subscribed again after it was lost."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._pubsub: Any = None

    def next(self, timeout_s: float) -> list[Signal]:
        try:
            if self._pubsub is None:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                self._pubsub = pubsub
                pubsub.subscribe(keys.SIGNALS)
            got: list[Signal] = []
            message = self._pubsub.get_message(timeout=timeout_s)
            while message is not None:
                if message.get("type") == "message":
                    signal = Signal.decode(str(message["data"]))
                    if signal is not None:
                        got.append(signal)
                message = self._pubsub.get_message(timeout=0)
            return got
        except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError) as exc:
            self.close()
            raise StoreUnavailable(describe(self.redis, exc)) from exc

    def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except redis.RedisError as exc:  # its connection is gone already
                log.debug("closing a lost subscription: %s", exc)
