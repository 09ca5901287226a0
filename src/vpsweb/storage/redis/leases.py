"""Step leases and cluster-wide locks in Redis (the scripts live beside this module)."""

from __future__ import annotations

from typing import Any, cast

import redis

from vpsweb.redis_target import Durability
from vpsweb.storage.base import Leases
from vpsweb.storage.leases import Renewal
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.connection_errors import translating
from vpsweb.storage.redis.durability import ReplicaAcks
from vpsweb.storage.redis.lua import Lua


@translating
class RedisLeases(Leases):
    """``acks``: a claim waits for the replicas asked for (default: none), so that a
    failover cannot hand the same step to a second payer."""

    def __init__(self, client: redis.Redis, *, acks: ReplicaAcks | None = None) -> None:
        self.redis = client
        self.acks = acks or ReplicaAcks(client, Durability())
        self._renew = Lua(client, "lease_renew.lua")
        self._release = Lua(client, "lease_release.lua")
        self._keep = Lua(client, "lease_keep.lua")

    def acquire(self, job_id: str, key: str, owner: str, ttl_s: float) -> bool:
        with self.redis.pipeline(transaction=False) as pipe:
            self.acquire_on(pipe, job_id, key, owner, ttl_s)
            self.acks.wait_on(pipe)
            return bool(self.acks.settled(pipe.execute(), job_id, f"the lease on {key}")[0])

    def acquire_on(self, client: Any, job_id: str, key: str, owner: str, ttl_s: float) -> Any:
        """SET NX with the TTL on ``client`` (this store's connection, or a pipeline, whose
        owner adds the WAIT)."""
        return client.set(keys.lease(job_id, key), owner, nx=True, px=int(ttl_s * 1000))

    def renew(self, job_id: str, key: str, owner: str, ttl_s: float) -> bool:
        name = keys.lease(job_id, key)
        return bool(self._renew(keys=[name], args=[owner, int(ttl_s * 1000)]))

    def keep(self, job_id: str, key: str, owner: str, ttl_s: float) -> Renewal:
        names = [keys.lease(job_id, key), keys.job(job_id), keys.progress(job_id)]
        held, status, left = self._keep(keys=names, args=[owner, int(ttl_s * 1000)])
        return Renewal(bool(held), status or None, float(left) if left else None)

    def release(self, job_id: str, key: str, owner: str) -> None:
        self.release_on(self.redis, job_id, key, owner)

    def release_on(self, client: Any, job_id: str, key: str, owner: str) -> Any:
        """lease_release.lua on ``client`` (this store's connection, or a pipeline)."""
        return self._release(keys=[keys.lease(job_id, key)], args=[owner], client=client)

    def holder(self, job_id: str, key: str) -> str | None:
        return cast(str | None, self.redis.get(keys.lease(job_id, key)))

    def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        # The same renew-or-take script: a lock is a lease on no particular job.
        return bool(self._renew(keys=[keys.lock(name)], args=[owner, int(ttl_s * 1000)]))
