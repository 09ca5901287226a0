"""A private redis-server for a test, made sure to be the one that answers on its port.

RedisServer takes a port that was free a moment before. With several suites (pytest-xdist
workers, other checkouts) starting servers at once, another redis-server can bind that
port first: ours then exits, and its readiness ping is answered by the other one. The
tests would then share that server's keys (fixed job ids among them) without a word.
"""

from __future__ import annotations

from typing import Any

import redis

from vpsweb.local.processes import RedisServer


def start_redis(attempts: int = 5, **options: Any) -> RedisServer:
    """RedisServer(**options).start(), on a new port until the server that answers is ours
    (its INFO process_id is our process's pid)."""
    for _ in range(attempts):
        server = RedisServer(**options).start()
        client = redis.Redis(port=server.port, socket_connect_timeout=5)
        try:
            answering = int(client.info("server")["process_id"])
        finally:
            client.close()
        assert server.proc is not None
        if answering == server.proc.pid:
            return server
        server.stop()
    raise RuntimeError(f"no port of our own for redis-server in {attempts} attempts")
