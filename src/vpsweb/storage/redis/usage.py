"""Usage of ended jobs in Redis: their summaries and the cumulative counters.

Summaries sit in a sorted set scored by end time and trimmed to the retention
period (what `vpsweb stats` reads); counters in one hash that only grows (what
Prometheus scrapes: counters must never go down). A record is one Lua script,
so a summary and its counters are written together or not at all.
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis

from vpsweb.storage.base import UsageLog
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.connection_errors import translating
from vpsweb.storage.redis.lua import Lua


@translating
class RedisUsageLog(UsageLog):
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._record = Lua(client, "usage_record.lua")

    def record(self, summary_json: str, counters: dict[str, float], ttl: int) -> None:
        self._record(**record_call(summary_json, counters, ttl))

    def summaries(self, since: float) -> list[str]:
        found = self.redis.zrangebyscore(keys.USAGE_SUMMARIES, repr(float(since)), "+inf")
        return cast(list[str], found)

    def counters(self) -> dict[str, float]:
        raw = cast(dict[str, str], self.redis.hgetall(keys.USAGE_COUNTERS))
        return {field: float(value) for field, value in raw.items()}


def record_call(summary_json: str, counters: dict[str, float], ttl: int) -> dict[str, Any]:
    """usage_record.lua's keys and arguments."""
    at = float(json.loads(summary_json)["finished_at"])
    amounts = [x for field, amount in counters.items() for x in (field, repr(float(amount)))]
    return {
        "keys": [keys.USAGE_SUMMARIES, keys.USAGE_COUNTERS],
        "args": [summary_json, repr(at), ttl, *amounts],
    }
