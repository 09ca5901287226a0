"""The state store behind small interfaces (``base``); Redis is the implementation."""

from vpsweb.storage.async_base import AsyncStorage
from vpsweb.storage.base import (
    TERMINAL,
    Event,
    JobRecord,
    JobStatus,
    JobStore,
    Leases,
    ProgressLog,
    Storage,
    Submission,
)

__all__ = [
    "TERMINAL",
    "Event",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "Leases",
    "ProgressLog",
    "Storage",
    "Submission",
    "connect",
    "connect_async",
]


def connect(url: str, *, retries: int | None = None) -> Storage:
    """The store for a URL (redis:// and rediss:// today); see storage.redis.connect."""
    from vpsweb.storage.redis import connect as redis_connect

    return redis_connect(url, retries=retries)


def connect_async(url: str, **pools: int) -> AsyncStorage:
    """The asyncio store for a URL (client-facing parts; see storage.aio); ``pools``:
    max_connections, max_stream_connections."""
    from vpsweb.storage.redis.async_store import connect_async as redis_connect_async

    return redis_connect_async(url, **pools)
