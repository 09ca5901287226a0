"""The state store behind small interfaces (``base``); Redis is the implementation."""

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
]


def connect(url: str, *, retries: int = 3) -> Storage:
    """The store for a URL (redis:// and rediss:// today); see storage.redis.connect."""
    from vpsweb.storage.redis import connect as redis_connect

    return redis_connect(url, retries=retries)
