"""The storage contract's fixture: each test runs against every store.

``store`` is a Backend over a fresh memory store (a ManualClock: no sleeps) or over a
real redis-server on a free port, on one found through Sentinel, or on a real
3-primary Redis Cluster (marked integration: ``make test-unit`` leaves them out; one
server, group or cluster per session, its data flushed between tests).
``store.advance(s)`` lets ``s`` seconds pass: the memory clock moves, Redis is slept
on, so tests keep such waits short.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.storage_backends import (
    Backend,
    cluster_backend,
    memory_backend,
    redis_backend,
    sentinel_backend,
)


@pytest.fixture(scope="session")
def contract_redis() -> Iterator[Any]:
    from vpsweb.local.processes import RedisServer

    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def contract_sentinel() -> Iterator[Any]:
    from tests.helpers.sentinel import SentinelGroup

    group = SentinelGroup().start()
    yield group
    group.stop()


@pytest.fixture(scope="session")
def contract_cluster() -> Iterator[Any]:
    from tests.helpers.redis_cluster import RedisCluster

    cluster = RedisCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.integration),
        pytest.param("sentinel", marks=pytest.mark.integration),
        pytest.param("cluster", marks=pytest.mark.integration),
    ]
)
def store(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        backend = memory_backend()
    elif request.param == "cluster":
        backend = cluster_backend(request.getfixturevalue("contract_cluster"))
    elif request.param == "sentinel":
        backend = sentinel_backend(request.getfixturevalue("contract_sentinel"))
    else:
        backend = redis_backend(request.getfixturevalue("contract_redis"))
    yield backend
    backend.storage.close()
