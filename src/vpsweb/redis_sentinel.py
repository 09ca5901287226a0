"""Connections to a Sentinel-watched master that ask Sentinel again on every reconnect.

redis-py's ``SentinelManagedConnection`` asks Sentinel for the master's address only in
``connect()``. A connection that dropped and is used again reconnects from
``send_packed_command`` through ``connect_check_health``, to the address it had before
(redis/redis-py#3874, open): during a failover a retried command keeps dialling the
dead primary, and when an operator restarts that primary (it comes back a master with
its old data until the Sentinels make it a replica, about 10 s later) the connection
lands there. Seen in vpsweb: both workers' dispatchers sat blocked in XREADGROUP on the
returning old primary, deaf to the new master's submissions, and every write made there
is discarded by the resync.

These classes resolve the master on every connect, whichever path connects, and try
each address once (the caller's retry policy retries, and asks Sentinel again). Every
Sentinel-managed pool vpsweb opens uses them: the store, the web page's async store,
the broker (kombu) and Celery's result backend.

A primary that was paused or cut off, not killed, keeps the connections it had: when it
answers again after the failover it is still a master (until the Sentinels demote it,
about 10 s later), and every write made there is dropped by the resync. With
``min-replicas-to-write 1`` it refuses those writes (NOREPLICAS: its replica is the new
master now), and these connections take that refusal as what it is there, a master that
is not the one to write to: they drop the connection and raise ConnectionError, so the
caller's retry asks Sentinel again. The refused write did not happen (Redis refuses a
script at its first write), so writing it again is safe.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelManagedConnection
from redis.connection import Connection
from redis.exceptions import ConnectionError, ResponseError, TimeoutError
from redis.sentinel import SentinelManagedConnection

log = logging.getLogger(__name__)

NOREPLICAS = "NOREPLICAS"
LAST_MASTER = "_vpsweb_master"  # on a pool: the master address its connections were made to
# The server that sent this thread's (or task's) last reply: where a pipeline's writes
# went, whatever another connection of the pool has heard since.
_answered_by: ContextVar[tuple[str, int] | None] = ContextVar("answered_by", default=None)


def answered_by() -> tuple[str, int] | None:
    """The address of the server whose reply this thread (or asyncio task) read last
    through a Sentinel-managed connection: read it right after a pipeline's execute."""
    return _answered_by.get()


REFUSED = (
    "the master refused a write for want of replicas (min-replicas-to-write): "
    "it is no longer the one Sentinel names, or its replica is down"
)


def _addr(reply: Any) -> tuple[str, int] | None:
    if not reply:
        return None
    host = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    return host, int(reply[1])


def named_master(pool: Any) -> tuple[str, int]:
    """The master a Sentinel names by ``SENTINEL get-master-addr-by-name``, as Sentinel's
    client guide says to ask. redis-py asks ``SENTINEL MASTERS`` instead, which goes on
    naming the old primary until the failover has ended: when a paused primary answers
    again, that is about 10 s after the promotion (measured), and every reconnect in
    between lands on the old primary. The Sentinel that answered goes to the front (as
    redis-py does); with none answering, redis-py's own ask says why."""
    manager = pool.sentinel_manager
    for i, sentinel in enumerate(list(manager.sentinels)):
        try:
            address = _addr(sentinel.sentinel_get_master_addr_by_name(pool.service_name))
        except (ConnectionError, ResponseError, TimeoutError):
            continue
        if address is not None:
            _to_front(manager.sentinels, i)
            return _follow(pool, address)
    return _follow(pool, tuple(pool.get_master_address()))


async def named_master_async(pool: Any) -> tuple[str, int]:
    """``named_master`` for redis.asyncio."""
    manager = pool.sentinel_manager
    for i, sentinel in enumerate(list(manager.sentinels)):
        try:
            reply = await sentinel.sentinel_get_master_addr_by_name(pool.service_name)
        except (ConnectionError, ResponseError, TimeoutError):
            continue
        address = _addr(reply)
        if address is not None:
            _to_front(manager.sentinels, i)
            return await _follow_async(pool, address)
    return await _follow_async(pool, tuple(await pool.get_master_address()))


async def _follow_async(pool: Any, address: tuple[str, int]) -> tuple[str, int]:
    """``_follow`` for redis.asyncio."""
    changed = _changed(pool, address)
    if changed is not None:
        try:
            await changed.disconnect(inuse_connections=True)
        except Exception as exc:  # a connection that fails to close is closed anyway
            log.debug("dropping the old master's connections: %s", exc)
    return address


def _real(pool: Any) -> Any:
    """The pool itself: a sync connection holds redis-py's proxy of it."""
    ref = getattr(pool, "connection_pool_ref", None)
    return (ref() if ref is not None else None) or pool


def _changed(pool: Any, address: tuple[str, int]) -> Any | None:
    """Remember ``address`` as the pool's master; the pool itself when that is a new
    one, whose every connection, in use or idle, must then be dropped: a connection
    made to the old primary stays open through a pause or a partition (no kill closed
    it), and would go on writing there, where the resync drops it."""
    pool = _real(pool)
    last = getattr(pool, LAST_MASTER, None)
    setattr(pool, LAST_MASTER, address)
    return pool if last is not None and last != address else None


def _follow(pool: Any, address: tuple[str, int]) -> tuple[str, int]:
    """``address``, the pool's connections to another master dropped (``_changed``)."""
    changed = _changed(pool, address)
    if changed is not None:
        changed.disconnect(inuse_connections=True)
    return address


def _followed(pool: Any) -> tuple[str, int] | None:
    """The master a Sentinel-managed pool of the master last connected to; None for
    any other pool, or before its first connection."""
    pool = _real(pool)
    return getattr(pool, LAST_MASTER, None) if getattr(pool, "is_master", False) else None


def master_moved(pool: Any, wrote_to: tuple[str, int] | None) -> bool:
    """Whether Sentinel names another master than ``wrote_to`` (where a write went,
    ``answered_by`` right after it; else where ``pool`` last connected): the write may
    have gone to an old primary. False for a pool not managed by Sentinel."""
    last = _followed(pool)
    return last is not None and named_master(_real(pool)) != (wrote_to or last)


async def master_moved_async(pool: Any, wrote_to: tuple[str, int] | None) -> bool:
    """``master_moved`` for redis.asyncio."""
    last = _followed(pool)
    return last is not None and await named_master_async(_real(pool)) != (wrote_to or last)


def _to_front(sentinels: list[Any], i: int) -> None:
    if 0 < i < len(sentinels):
        sentinels[0], sentinels[i] = sentinels[i], sentinels[0]


def _refused(exc: ResponseError, pool: Any) -> bool:
    """NOREPLICAS from a master: and if so, the Sentinel that named it goes to the back
    of the list. redis-py keeps asking the Sentinel that answered last, and one that has
    not yet heard of the failover (Sentinels spread it every 2 s) would name this
    server again for every retry."""
    if not (pool.is_master and str(exc).startswith(NOREPLICAS)):
        return False
    sentinels = pool.sentinel_manager.sentinels
    if len(sentinels) > 1:
        sentinels.append(sentinels.pop(0))
    return True


class FollowingConnection(SentinelManagedConnection):
    """A connection to the master that Sentinel names at the moment it connects."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            reply = super().read_response(*args, **kwargs)
            _answered_by.set((self.host, self.port))
            return reply
        except ResponseError as exc:
            if not _refused(exc, self.connection_pool):
                raise
            self.disconnect()
            raise ConnectionError(REFUSED) from exc

    def _connect_retry(self) -> None:
        if self._sock or not self.connection_pool.is_master:
            super()._connect_retry()
            return
        self.connect_to(named_master(self.connection_pool))

    def connect_to(self, address: Any) -> None:
        # Reached from connect() with an address just asked of Sentinel: no second ask.
        self.host, self.port = address
        Connection.connect_check_health(
            self, check_health=self.connection_pool.check_connection, retry_socket_connect=False
        )

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self._sock:
            return
        if not self.connection_pool.is_master:
            super().connect_check_health(check_health, retry_socket_connect)
            return
        self.host, self.port = named_master(self.connection_pool)
        super().connect_check_health(check_health=check_health, retry_socket_connect=False)


class AsyncFollowingConnection(AsyncSentinelManagedConnection):
    """The same for redis.asyncio (the web page's store)."""

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            reply = await super().read_response(*args, **kwargs)
            _answered_by.set((self.host, self.port))
            return reply
        except ResponseError as exc:
            if not _refused(exc, self.connection_pool):
                raise
            await self.disconnect()
            raise ConnectionError(REFUSED) from exc

    async def _connect_retry(self) -> None:
        if self.is_connected or not self.connection_pool.is_master:
            await super()._connect_retry()
            return
        await self.connect_to(await named_master_async(self.connection_pool))

    async def connect_to(self, address: Any) -> None:
        self.host, self.port = address
        await AsyncConnection.connect_check_health(
            self, check_health=self.connection_pool.check_connection, retry_socket_connect=False
        )

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self.is_connected:
            return
        if not self.connection_pool.is_master:
            await super().connect_check_health(check_health, retry_socket_connect)
            return
        self.host, self.port = await named_master_async(self.connection_pool)
        await super().connect_check_health(check_health=check_health, retry_socket_connect=False)
