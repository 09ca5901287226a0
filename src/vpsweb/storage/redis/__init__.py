"""The Redis store: registry, step outputs, progress; the Lua scripts live beside it."""

from __future__ import annotations

import redis

from vpsweb.storage.base import Storage
from vpsweb.storage.redis.progress import RedisProgressLog
from vpsweb.storage.redis.store import RedisJobStore

__all__ = ["RedisJobStore", "RedisProgressLog", "connect"]


def connect(url: str) -> Storage:
    """Both halves on one connection pool (threads may share it)."""
    client = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
    return Storage(jobs=RedisJobStore(client), progress=RedisProgressLog(client))
