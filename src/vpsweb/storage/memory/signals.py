"""Signals in memory: Redis pub/sub's rules in one process (storage.signals).

Every subscription made before an announcement gets it, in order; one made after
does not (as with PUBLISH, nothing is kept for later subscribers). The subscriber
lists live in the keyspace, so that every part of one memory store shares them.
"""

from __future__ import annotations

import queue

from vpsweb.storage.memory.state import Keyspace
from vpsweb.storage.signals import Signal, SignalFeed, Signals

SUBSCRIBERS = ("signals",)  # the open subscriptions' queues


def announce(space: Keyspace, signal: Signal) -> None:
    """PUBLISH: to every open subscription (the store's parts call it where Redis's do)."""
    with space.lock:
        for inbox in space.get(SUBSCRIBERS) or []:
            inbox.put(signal)


class MemorySignals(Signals):
    def __init__(self, space: Keyspace) -> None:
        self.space = space

    def announce(self, signal: Signal) -> None:
        announce(self.space, signal)

    def subscribe(self) -> SignalFeed:
        inbox: queue.SimpleQueue[Signal] = queue.SimpleQueue()
        with self.space.lock:
            self.space.setdefault(SUBSCRIBERS, list).append(inbox)
        return MemorySignalFeed(self.space, inbox)


class MemorySignalFeed(SignalFeed):
    def __init__(self, space: Keyspace, inbox: queue.SimpleQueue[Signal]) -> None:
        self.space, self.inbox = space, inbox

    def next(self, timeout_s: float) -> list[Signal]:
        try:
            got = [self.inbox.get(timeout=timeout_s)]
        except queue.Empty:
            return []
        while True:
            try:
                got.append(self.inbox.get_nowait())
            except queue.Empty:
                return got

    def close(self) -> None:
        with self.space.lock:
            inboxes = self.space.get(SUBSCRIBERS) or []
            if self.inbox in inboxes:
                inboxes.remove(self.inbox)
