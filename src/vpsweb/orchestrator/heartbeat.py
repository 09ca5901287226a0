"""A worker's heartbeat: tells clients it is alive and which queues it consumes.

Clients use it to say, within seconds, that no worker will run their job (none at
all, or none on a queue the job needs) instead of waiting in silence.
"""

from __future__ import annotations

import logging
import threading

from vpsweb.storage import Storage

log = logging.getLogger(__name__)

EVERY_S = 5.0
TTL_S = 15.0  # three missed beats and the worker counts as gone


class Heartbeat:
    """Options (keyword-only):
    storage: the state store.
    worker: this worker's node name.
    queues: the queues it consumes.
    """

    def __init__(self, *, storage: Storage, worker: str, queues: list[str]) -> None:
        self.storage = storage
        self.worker = worker
        self.queues = queues
        self.stop = threading.Event()

    def beat(self) -> None:
        self.storage.presence.beat(self.worker, self.queues, TTL_S)

    def run(self) -> None:
        while True:
            try:
                self.beat()
            except Exception as exc:
                log.warning("heartbeat of %s failed (will retry): %s", self.worker, exc)
            if self.stop.wait(EVERY_S):
                break
        try:
            self.storage.presence.leave(self.worker)
        except Exception as exc:  # the heartbeat lapses on its own
            log.warning("could not deregister %s: %s", self.worker, exc)
