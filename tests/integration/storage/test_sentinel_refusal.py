"""A master that refuses writes for want of replicas (``min-replicas-to-write``: an old
primary whose replica was promoted, in a setup that sets it) is a master not to write
to: vpsweb's Sentinel connections take the refusal as a lost connection (redis-py's
retry then connects again, asking Sentinel), and ask another Sentinel first next time.
The write was not made: Redis refuses before the first write."""

from __future__ import annotations

import pytest
import redis

from tests.helpers.sentinel import SentinelGroup
from vpsweb.storage.redis import redis_client

pytestmark = [pytest.mark.integration]


def test_a_refused_write_is_a_lost_connection_and_the_next_sentinel_is_asked_first() -> None:
    group = SentinelGroup().start()
    try:
        assert group.primary is not None
        client = redis_client(group.url, decode_responses=True)
        pool = client.connection_pool
        first = pool.sentinel_manager.sentinels[0]
        client.set("vpsweb:test:before", "1")
        primary = redis.Redis(port=group.primary.port, decode_responses=True)
        primary.config_set("min-replicas-to-write", 2)  # it has one replica
        assert client.get("vpsweb:test:before") == "1"  # reads go on
        with pytest.raises(redis.ConnectionError, match="want of replicas"):
            client.set("vpsweb:test:after", "1")
        refused = int(primary.info("commandstats")["cmdstat_set"]["rejected_calls"])
        assert primary.get("vpsweb:test:after") is None
        primary.close()
        client.close()
        assert pool.sentinel_manager.sentinels[0] is not first
        assert refused >= 1
    finally:
        group.stop()
