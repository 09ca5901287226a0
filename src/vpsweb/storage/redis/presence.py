"""Worker heartbeats in Redis: a sorted set of expiry times and each worker's queues."""

from __future__ import annotations

import json
from typing import cast

import redis

from vpsweb.storage.base import Presence
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.connection_errors import translating


@translating
class RedisPresence(Presence):
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def _now(self) -> float:
        # Redis's clock, not this host's: workers and clients may disagree by seconds.
        seconds, micros = cast(tuple[int, int], self.redis.time())
        return seconds + micros / 1e6

    def beat(self, worker: str, queues: list[str], ttl_s: float) -> None:
        now = self._now()
        gone = cast(list[str], self.redis.zrangebyscore(keys.WORKERS, "-inf", now))
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.WORKERS, {worker: now + ttl_s})
            pipe.hset(keys.WORKER_QUEUES, worker, json.dumps(sorted(queues)))
            # Workers that stopped beating (killed, lost): forget them.
            pipe.zremrangebyscore(keys.WORKERS, "-inf", now)
            if gone := [g for g in gone if g != worker]:
                pipe.hdel(keys.WORKER_QUEUES, *gone)
            pipe.execute()

    def leave(self, worker: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.WORKERS, worker)
            pipe.hdel(keys.WORKER_QUEUES, worker)
            pipe.execute()

    def live(self) -> dict[str, list[str]]:
        names = cast(list[str], self.redis.zrangebyscore(keys.WORKERS, self._now(), "+inf"))
        if not names:
            return {}
        queues = cast(list[str | None], self.redis.hmget(keys.WORKER_QUEUES, names))
        return live_of(names, queues)


def live_of(names: list[str], queues: list[str | None]) -> dict[str, list[str]]:
    """Worker name -> its queues, from the live names and their stored queue lists."""
    return {n: json.loads(q) if q else [] for n, q in zip(names, queues, strict=True)}
