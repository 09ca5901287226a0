"""Replica acknowledgements (WAIT) for the writes that guard billing and endings.

Replication is asynchronous: a write the primary acknowledged can still be missing
on the replica Sentinel promotes when the primary dies. Measured before this module:
a job a client had received as ``succeeded`` was ``running`` again on the promoted
replica, and two steps were paid again. So the lease claims, the stored step outputs
and a job's end carry ``WAIT n timeout`` in the same pipeline (WAIT covers the writes
of its own connection only, and a pipeline is one connection), and a reader that
sees a job ended fences once before saying so: a tiny write of its own plus WAIT,
which covers everything written before it, the end included.

What too few acknowledgements mean depends on the replicas the primary has online:
* some, but fewer acks than asked: replication lags. Keep waiting up to
  ``Durability.cap_s``, then StoreUnavailable, which the step path retries like any
  store outage (going on would hand out a write a failover can undo). Waiting is on
  the primary's offset just after the write (INFO replication: each replica's
  acknowledged offset), since WAIT cannot be asked again on the write's connection
  (the pool took it back) and a new write to WAIT on would lie further ahead each
  time: a replica lagging longer than one WAIT would never catch up with it. A
  fence write and WAIT between the looks serve as the pause, and prompt the replicas
  to acknowledge at once (REPLCONF GETACK) rather than on their 1 s tick.
* none: behind Sentinel, first ask whether this is still the master Sentinel names:
  an old primary that was paused or cut off answers again with its replica promoted
  and its clients' connections still open, and what is written there is dropped when
  it is made a replica (StoreUnavailable, every connection of the pool dropped, and
  the caller writes again, on the new master). Otherwise there is nothing a failover
  could promote, so nothing to lose to one (a replica that comes back resyncs from
  this primary). Go on, count it in ``unreplicated`` and log a warning (at most once
  a minute per process).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Literal

import redis
import redis.asyncio as aioredis

from vpsweb.errors import StoreUnavailable
from vpsweb.redis_sentinel import answered_by, master_moved, master_moved_async
from vpsweb.redis_target import Durability
from vpsweb.storage.redis import keys

log = logging.getLogger(__name__)

FENCE_TTL_MS = 10_000  # a fence key only has to exist until WAIT has answered
FENCED_CACHE = 4096  # ended jobs a process remembers having fenced
WARN_EVERY_S = 60.0

Verdict = Literal["acked", "alone", "lagging"]
# A primary alone is asked about first: alone because its replica was promoted (it was
# paused or cut off, and its clients' connections stayed open), a write there is
# dropped when the Sentinels make it a replica. Said so, the write is made again.
MOVED = (
    "{what}: written to a primary the Sentinels no longer name (an old primary that was "
    "paused or cut off); to be written again on the new one"
)


def verdict(acked: int, wanted: int, online: int) -> Verdict:
    """What ``acked`` acknowledgements mean with ``online`` replicas online: enough
    (``acked`` ≥ the replicas asked for, or ≥ every online one when fewer are online),
    none to wait for, or lagging ones to wait for."""
    if acked >= wanted or (0 < online <= acked):
        return "acked"
    return "alone" if online == 0 else "lagging"


def replicas_at(info: dict[str, Any], offset: int) -> tuple[int, int]:
    """From INFO replication: the replicas online (one still loading its first sync can
    neither be promoted nor acknowledge), and how many of them acknowledged ``offset``."""
    offsets = [
        int(value.get("offset", 0))
        for name, value in info.items()
        if name.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    ]
    return len(offsets), sum(1 for o in offsets if o >= offset)


class _Acks:
    """What the sync and the asyncio seams share: the settings, the fenced jobs, the
    count of writes that went on with no replica online."""

    def __init__(self, durability: Durability) -> None:
        self.durability = durability
        self.wanted = durability.replicas
        self.unreplicated = 0
        self._fenced: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._warned = 0.0

    @property
    def on(self) -> bool:
        return self.wanted > 0

    def wait_on(self, pipe: Any) -> None:
        """Queue WAIT as ``pipe``'s last command (a pipeline: one connection, so WAIT
        covers the writes queued before it). ``settled``/``asettled`` strip its reply."""
        if self.on:
            pipe.execute_command("WAIT", self.wanted, self.durability.timeout_ms)

    def _fenced_already(self, job_id: str) -> bool:
        with self._lock:
            if job_id in self._fenced:
                self._fenced.move_to_end(job_id)
                return True
            return False

    def _remember(self, job_id: str) -> None:
        with self._lock:
            self._fenced[job_id] = None
            while len(self._fenced) > FENCED_CACHE:
                self._fenced.popitem(last=False)

    def _step(self, acked: int, online: int, what: str, deadline: float) -> bool:
        """True when done waiting; raises when a lagging replica outlasted the cap."""
        found = verdict(acked, self.wanted, online)
        if found == "acked":
            return True
        if found == "alone":
            with self._lock:
                self.unreplicated += 1
                warn = time.monotonic() - self._warned >= WARN_EVERY_S
                if warn:
                    self._warned = time.monotonic()
            if warn:
                log.warning(
                    "%s: no replica online to acknowledge it (%d such writes so far); going "
                    "on, since a failover would have nothing to promote",
                    what,
                    self.unreplicated,
                )
            return True
        if time.monotonic() >= deadline:
            raise StoreUnavailable(
                f"{what}: {online} replica(s) online but only {acked} acknowledged within "
                f"{self.durability.cap_s:g} s; replication is lagging"
            )
        return False


class ReplicaAcks(_Acks):
    """The seam on a synchronous client (safe to share between threads)."""

    def __init__(self, client: redis.Redis, durability: Durability) -> None:
        super().__init__(durability)
        self.redis = client

    def settled(self, replies: list[Any], job_id: str, what: str) -> list[Any]:
        """``replies`` of a pipeline ``wait_on`` ended, without WAIT's; returns once
        enough replicas have them (see the module's docstring)."""
        if not self.on:
            return replies
        self._until_acked(int(replies[-1]), job_id, f"{what} of job {job_id}")
        return replies[:-1]

    def fence(self, job_id: str) -> None:
        """Before a reader reports ``job_id`` ended: once per job per process."""
        if not self.on or self._fenced_already(job_id):
            return
        self._until_acked(self._fence_write(job_id), job_id, f"the end of job {job_id}")
        self._remember(job_id)

    def _until_acked(self, acked: int, job_id: str, what: str) -> None:
        deadline = time.monotonic() + self.durability.cap_s
        target: int | None = None  # the primary's offset once the write was made
        wrote_to = answered_by()  # before INFO, which another server may answer
        while acked < self.wanted:
            info = dict(self.redis.info("replication"))
            target = int(info.get("master_repl_offset", 0)) if target is None else target
            online, reached = replicas_at(info, target)
            if online == 0 and master_moved(self.redis.connection_pool, wrote_to):
                raise StoreUnavailable(MOVED.format(what=what))
            if self._step(max(acked, reached), online, what, deadline):
                return
            acked = self._fence_write(job_id)  # covers the target: a later write

    def _fence_write(self, job_id: str) -> int:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.fence(job_id), "1", px=FENCE_TTL_MS)
            self.wait_on(pipe)
            return int(pipe.execute()[-1])


class AsyncReplicaAcks(_Acks):
    """The same seam on an asyncio client (the web page's and AsyncClient's store)."""

    def __init__(self, client: aioredis.Redis, durability: Durability) -> None:
        super().__init__(durability)
        self.redis = client

    async def settled(self, replies: list[Any], job_id: str, what: str) -> list[Any]:
        if not self.on:
            return replies
        await self._until_acked(int(replies[-1]), job_id, f"{what} of job {job_id}")
        return replies[:-1]

    async def fence(self, job_id: str) -> None:
        if not self.on or self._fenced_already(job_id):
            return
        await self._until_acked(await self._fence_write(job_id), job_id, f"the end of {job_id}")
        self._remember(job_id)

    async def _until_acked(self, acked: int, job_id: str, what: str) -> None:
        deadline = time.monotonic() + self.durability.cap_s
        target: int | None = None
        wrote_to = answered_by()
        while acked < self.wanted:
            info = dict(await self.redis.info("replication"))
            target = int(info.get("master_repl_offset", 0)) if target is None else target
            online, reached = replicas_at(info, target)
            if online == 0 and await master_moved_async(self.redis.connection_pool, wrote_to):
                raise StoreUnavailable(MOVED.format(what=what))
            if self._step(max(acked, reached), online, what, deadline):
                return
            acked = await self._fence_write(job_id)

    async def _fence_write(self, job_id: str) -> int:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(keys.fence(job_id), "1", px=FENCE_TTL_MS)
        self.wait_on(pipe)
        return int((await pipe.execute())[-1])
