"""What one pipeline guarantees, on one Redis or on a Redis Cluster.

On one Redis (or a Sentinel's master) a pipeline's commands run in the order sent.
A Cluster's pipeline sends each node its share at once, so commands on different
slots may run in any order: a write that must follow another (a submission after
the job it names, an address after its jobs) goes in a round trip of its own there.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio.cluster
import redis.cluster


def in_order(client: Any) -> bool:
    """True when one pipeline on ``client`` (sync or asyncio) runs its commands in order."""
    return not isinstance(client, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster))
