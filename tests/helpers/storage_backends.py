"""The storage contract's backends: the same Storage over memory, a real Redis, or a
real Redis found through Sentinel.

``advance(s)`` lets ``s`` seconds pass: the memory clock moves, Redis is slept on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vpsweb.config import load_config
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.storage import JobStore, Storage
from vpsweb.storage.memory import ManualClock, MemoryJobStore, memory_storage


@dataclass
class Backend:
    kind: str
    storage: Storage
    advance: Callable[[float], None]
    job_store: Callable[..., JobStore]  # another JobStore on the same data, with options
    quiet_s: float  # how long a follower waits to be sure nothing more comes
    plans: list[JobPlan] = field(default_factory=list)

    def job(self, job_id: str = "c0ffee000001", **overrides: Any) -> JobPlan:
        """A job stored as submitted (``overrides``: plan fields, e.g. retention_s)."""
        data = {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN"}
        data["parallel_count"] = overrides.pop("parallel_count", 1)
        plan = build_plan(data, load_config(), job_id=job_id, offline=True)
        plan = plan.model_copy(update=overrides)
        self.storage.jobs.create([plan])
        return plan


def memory_backend() -> Backend:
    """A fresh in-memory store on a ManualClock: no sleeps."""
    clock = ManualClock()
    storage = memory_storage(clock=clock, block_ms=5)
    space = storage.jobs.space  # type: ignore[attr-defined]
    return Backend("memory", storage, clock.advance, lambda **o: MemoryJobStore(space, **o), 0.01)


def redis_backend(server: Any) -> Backend:
    """The store on ``server`` (a real redis-server), its database flushed."""
    import redis

    from vpsweb.storage import connect
    from vpsweb.storage.redis import RedisJobStore

    client = redis.Redis.from_url(server.url, decode_responses=True)
    client.flushdb()
    storage = connect(server.url)
    storage.progress.block_ms = 50  # type: ignore[attr-defined]
    jobs = lambda **o: RedisJobStore(client, **o)  # noqa: E731
    return Backend("redis", storage, time.sleep, jobs, 0.2)


def stream_events(store: Backend, job_id: str) -> list:
    """The stream so far (ended jobs: through the terminal event)."""
    events = []
    try:
        for event in store.storage.progress.events(job_id, timeout=store.quiet_s):
            events.append(event)
    except TimeoutError:
        pass
    return events


def sentinel_backend(group: Any) -> Backend:
    """The store on the master a Sentinel group names (a tests.helpers.sentinel group),
    reached the way workers reach it: ``redis+sentinel://``, its database flushed."""
    from vpsweb.storage import connect
    from vpsweb.storage.redis import RedisJobStore, redis_client

    client = redis_client(group.url, decode_responses=True)
    client.flushdb()
    storage = connect(group.url)
    storage.progress.block_ms = 50  # type: ignore[attr-defined]
    jobs = lambda **o: RedisJobStore(client, **o)  # noqa: E731
    return Backend("sentinel", storage, time.sleep, jobs, 0.2)


def cluster_backend(cluster: Any) -> Backend:
    """The store on a real Redis Cluster (a tests.helpers.redis_cluster cluster), reached
    the way workers reach it: ``redis+cluster://``, every primary flushed."""
    from vpsweb.storage import connect
    from vpsweb.storage.redis import RedisJobStore, redis_client

    cluster.flush()
    client = redis_client(cluster.url, decode_responses=True)
    storage = connect(cluster.url)
    storage.progress.block_ms = 50  # type: ignore[attr-defined]
    jobs = lambda **o: RedisJobStore(client, **o)  # noqa: E731
    return Backend("cluster", storage, time.sleep, jobs, 0.2)
