"""A worker's job watch hears again after its Redis restarted (issue 25).

Pub/sub loses what is published while a subscriber is disconnected (the keeper's
lease round covers that), but the subscription itself must come back: otherwise
every later cancel would wait for a keeper round. A real redis-server is stopped
and started again under a worker's store connection (retries as a worker's).
"""

from __future__ import annotations

import threading

from tests.helpers.redis_server import start_redis
from vpsweb.orchestrator.services import STORE_RETRIES
from vpsweb.orchestrator.watch import JobWatch, Watched
from vpsweb.storage import connect
from vpsweb.storage.signals import Signal, SignalKind, Signals

ATTEMPTS = 30  # announcements, each followed by up to a second's wait


def _heard(signals: Signals | None, watched: Watched, job_id: str) -> int:
    """Announce the job's end until the watch has heard it; the announcements sent."""
    assert signals is not None
    woke = threading.Event()
    for sent in range(1, ATTEMPTS + 1):
        signals.announce(Signal(SignalKind.ENDED, job_id))
        for _ in range(10):
            if watched.ended is not None:
                return sent
            woke.wait(0.1)
    return 0


def test_the_job_watch_hears_signals_again_after_a_redis_restart() -> None:
    server = start_redis()
    storage = connect(server.url, retries=STORE_RETRIES)
    try:
        watch = JobWatch(storage.signals, storage.progress)
        first = watch.watch("c0ffee0000a1")
        assert _heard(storage.signals, first, "c0ffee0000a1") > 0  # subscribed at start
        server.restart(down_s=1.0)
        second = watch.watch("c0ffee0000a2")
        assert second.ended is None
        sent = _heard(storage.signals, second, "c0ffee0000a2")
    finally:
        storage.close()
        server.stop()
    print(f"\nheard again after the restart at announcement {sent}")
    assert sent > 0  # the subscription came back by itself
