"""The memory store's keyspace: values that expire, one lock, an injectable clock.

Each part of the memory store keeps its data here under names shaped like the
Redis keys (``("job", id)``, ``("lease", id, key)``, ...), with a time to live
where Redis sets one, so that retention and lease expiry behave alike. Every
operation of a part runs under the one lock: what is one Lua script in Redis is
one critical section here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from vpsweb.storage.base import Event

Clock = Callable[[], float]
Name = tuple[str, ...]
STREAM_MAXLEN = 1000  # as the Redis store trims its streams (it trims approximately)


class ManualClock:
    """A clock that moves only when told to (epoch seconds): lease expiry, deadlines and
    straggler grace periods without sleeping."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def lua_number(value: float) -> str:
    """A number as Redis's Lua ``tostring`` writes it (``%.14g``: 25 -> "25")."""
    return format(float(value), ".14g")


class Stream:
    """A Redis-like stream: entries with increasing "ms-seq" ids, trimmed to a length."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, str]]] = []
        self.last = (0, 0)

    def add(self, fields: dict[str, str], now: float, maxlen: int = STREAM_MAXLEN) -> str:
        ms = int(now * 1000)
        self.last = (ms, 0) if ms > self.last[0] else (self.last[0], self.last[1] + 1)
        entry_id = f"{self.last[0]}-{self.last[1]}"
        self.entries.append((entry_id, dict(fields)))
        del self.entries[:-maxlen]
        return entry_id

    def after(self, entry_id: str, count: int) -> list[tuple[str, dict[str, str]]]:
        start = parse_id(entry_id)
        return [e for e in self.entries if parse_id(e[0]) > start][:count]


def parse_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Keyspace:
    """Named values with optional expiry (``clock`` seconds), under one re-entrant lock.

    ``changed`` is notified whenever a stream grows, for readers that follow one.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or time.time
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._data: dict[Name, Any] = {}
        self._expires: dict[Name, float] = {}

    def get(self, name: Name) -> Any:
        at = self._expires.get(name)
        if at is not None and at <= self.clock():
            self.delete(name)
        return self._data.get(name)

    def setdefault(self, name: Name, factory: Callable[[], Any]) -> Any:
        value = self.get(name)
        if value is None:
            value = self._data[name] = factory()
        return value

    def put(self, name: Name, value: Any, ttl: float | None = None) -> None:
        """Set (and replace any time to live, as SET does)."""
        self._data[name] = value
        self._expires.pop(name, None)
        if ttl is not None:
            self._expires[name] = self.clock() + ttl

    def expire(self, name: Name, ttl: float) -> None:
        if self.get(name) is not None:
            self._expires[name] = self.clock() + ttl

    def delete(self, name: Name) -> None:
        self._data.pop(name, None)
        self._expires.pop(name, None)

    def append(self, name: Name, fields: dict[str, str]) -> str:
        """XADD: append to the stream ``name``, waking its followers."""
        entry_id = self.setdefault(name, Stream).add(fields, self.clock())
        self.changed.notify_all()
        return entry_id


def event_fields(event: Event, now: float) -> dict[str, str]:
    """An event as the stream stores it: strings only, empty for None."""
    payload = {"event": event.kind.value, "ts": f"{now:.3f}", **event.fields}
    return {k: "" if v is None else str(v) for k, v in payload.items()}


def job(job_id: str) -> Name:
    return ("job", job_id)


def progress(job_id: str) -> Name:
    return ("progress", job_id)


def events(job_id: str) -> Name:
    return ("events", job_id)


def step(job_id: str, key: str) -> Name:
    return ("step", job_id, key)


TERMINAL_VALUES = frozenset({"succeeded", "failed", "cancelled"})
