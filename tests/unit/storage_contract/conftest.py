"""The storage contract's fixture: each test runs against every store.

``store`` is a Backend over a fresh memory store (a ManualClock: no sleeps) or over a
real redis-server on a free port (marked integration: ``make test-unit`` leaves it
out; it flushes the database between tests). ``store.advance(s)`` lets ``s`` seconds
pass: the memory clock moves, Redis is slept on, so tests keep such waits short.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

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


@pytest.fixture(scope="session")
def contract_redis() -> Iterator[Any]:
    from vpsweb.local.processes import RedisServer

    server = RedisServer().start()
    yield server
    server.stop()


def _memory() -> Backend:
    clock = ManualClock()
    storage = memory_storage(clock=clock, block_ms=5)
    space = storage.jobs.space  # type: ignore[attr-defined]
    return Backend("memory", storage, clock.advance, lambda **o: MemoryJobStore(space, **o), 0.01)


def _redis(server: Any) -> Backend:
    import redis

    from vpsweb.storage import connect
    from vpsweb.storage.redis import RedisJobStore

    client = redis.Redis.from_url(server.url, decode_responses=True)
    client.flushdb()
    storage = connect(server.url)
    storage.progress.block_ms = 50  # type: ignore[attr-defined]
    jobs = lambda **o: RedisJobStore(client, **o)  # noqa: E731
    return Backend("redis", storage, time.sleep, jobs, 0.2)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        backend = _memory()
    else:
        backend = _redis(request.getfixturevalue("contract_redis"))
    yield backend
    backend.storage.close()
