"""The storage contract's fixture: each test runs against every store.

``store`` is a Backend over a fresh memory store (a ManualClock: no sleeps) or over a
real redis-server on a free port (marked integration: ``make test-unit`` leaves it
out; it flushes the database between tests). ``store.advance(s)`` lets ``s`` seconds
pass: the memory clock moves, Redis is slept on, so tests keep such waits short.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.storage_backends import Backend, memory_backend, redis_backend


@pytest.fixture(scope="session")
def contract_redis() -> Iterator[Any]:
    from vpsweb.local.processes import RedisServer

    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        backend = memory_backend()
    else:
        backend = redis_backend(request.getfixturevalue("contract_redis"))
    yield backend
    backend.storage.close()
