"""The state store behind small interfaces (``base``); Redis is the implementation."""

from vpsweb.storage.base import (
    TERMINAL,
    Event,
    JobRecord,
    JobStatus,
    JobStore,
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
    "ProgressLog",
    "Storage",
    "Submission",
    "connect",
]


def connect(url: str) -> Storage:
    """The store for a URL (redis:// and rediss:// today)."""
    from vpsweb.storage.redis import connect as redis_connect

    return redis_connect(url)
