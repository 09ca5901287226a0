"""Counting the commands clients send to a redis-server, by name (MONITOR).

``INFO commandstats`` also counts the commands a Lua script runs inside Redis (a
lease renewal script's GET, PEXPIRE, HGET...), which cost no round trip; MONITOR
tells them apart (their source is "lua"), so this counts only what clients sent.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from importlib import resources
from typing import Any

import redis


def script_names() -> dict[str, str]:
    """vpsweb's Lua scripts by their SHA1 (what EVALSHA names them by)."""
    folder = resources.files("vpsweb.storage.redis")
    return {
        hashlib.sha1(f.read_bytes()).hexdigest(): f.name
        for f in folder.iterdir()
        if f.name.endswith(".lua")
    }


class CommandCounter:
    """Counts client commands (lower-case names) from ``start()`` until ``stop()``;
    an EVALSHA of one of vpsweb's scripts counts as ``evalsha:<file>`` too."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.scripts = script_names()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-monitor", daemon=True)

    def start(self) -> CommandCounter:
        self._thread.start()
        assert self._ready.wait(10), "MONITOR did not start"
        return self

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def stop(self) -> dict[str, int]:
        self._stopping.set()
        self.client.ping()  # a line for the monitor to read, so that it sees the stop
        self._thread.join(10)
        return self.snapshot()

    def _run(self) -> None:
        with self.client.monitor() as monitor:
            self._ready.set()
            while not self._stopping.is_set():
                line: dict[str, Any] = monitor.next_command()
                if line["client_type"] == "lua" or not line["command"]:
                    continue
                words = str(line["command"]).split(" ", 2)
                name = words[0].strip('"').lower()
                with self._lock:
                    self.counts[name] += 1
                    if name == "evalsha" and len(words) > 1:
                        script = self.scripts.get(words[1].strip('"'), "?")
                        self.counts[f"evalsha:{script}"] += 1
