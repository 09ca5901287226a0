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
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelManagedConnection
from redis.connection import Connection
from redis.sentinel import SentinelManagedConnection


class FollowingConnection(SentinelManagedConnection):
    """A connection to the master that Sentinel names at the moment it connects."""

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
        self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health=check_health, retry_socket_connect=False)


class AsyncFollowingConnection(AsyncSentinelManagedConnection):
    """The same for redis.asyncio (the web page's store)."""

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
        self.host, self.port = await self.connection_pool.get_master_address()
        await super().connect_check_health(check_health=check_health, retry_socket_connect=False)
