"""`vpsweb bench batches`: what a collection costs to send and to follow.

a) a directory of 500 poem files validated (``load_source``) and enqueued
   (``Client.submit_batch``) on the bench's Redis with no worker, so nothing else
   competes: wall time, target < 2 s;
b) ``Batch.progress()``'s Redis round trips on a 10-job and a 500-job batch (the
   sends of the calling thread, as tests/helpers/round_trips.py counts them): the same
   number whatever the size;
c) following the 500-job batch as the CLI's live view does (``progress()`` and
   ``events()``, each every ``follow_every_s``) for a while: the follower's own CPU
   and the Redis CPU it causes, each as a share of one core, target <= 5 % together.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from vpsweb.batches.sources import load_source
from vpsweb.bench.harness import BenchEnv
from vpsweb.client.batching import follow_every_s
from vpsweb.client.sync import Client
from vpsweb.config import load_config

POEMS = 500
SMALL = 10
FOLLOW_S = 20.0
LINES = (
    "The fog comes\non little cat feet.",
    "It sits looking\nover harbor and city\non silent haunches\nand then moves on.",
    "I wandered lonely as a cloud\nThat floats on high o'er vales and hills,",
    "Because I could not stop for Death,\nHe kindly stopped for me;",
)


def _poem_dir(count: int) -> Path:
    """``count`` poem files, each text its own (a line numbered), as a collection is."""
    root = Path(tempfile.mkdtemp(prefix="vpsweb-bench-batch-"))
    for i in range(count):
        text = f"{LINES[i % len(LINES)]}\nline {i + 1} of the collection\n"
        (root / f"{i + 1:03d}-poem.txt").write_text(text, encoding="utf-8")
    return root


@contextlib.contextmanager
def _sends() -> Iterator[list[int]]:
    """This thread's sends to Redis (one per command or pipeline: one round trip)."""
    from redis.connection import AbstractConnection

    sent: list[int] = []
    me, original = threading.get_ident(), AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> Any:
        if threading.get_ident() == me:
            sent.append(1)
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def _redis_cpu_s(url: str) -> float:
    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _submit(client: Client, root: Path) -> dict[str, Any]:
    defaults = {"source_lang": "en", "target_lang": "zh-CN", "parallel_count": 1}
    t0 = time.perf_counter()
    entries = load_source(root, defaults, max_parallel_count=8)
    validated = time.perf_counter() - t0
    batch = client.submit_batch(entries, name="bench", offline=True)
    total = time.perf_counter() - t0
    return {
        "poems": len(entries),
        "validate_s": round(validated, 3),
        "validate_and_enqueue_s": round(total, 3),
        "batch_id": batch.id,
    }


def _round_trips(client: Client, batch_id: str) -> int:
    batch = client.batch(batch_id)  # the record read, the connection made
    with _sends() as sent:
        batch.progress()  # a fresh handle: no tally to reuse yet
    return len(sent)


def _follow(client: Client, url: str, batch_id: str, seconds: float) -> dict[str, Any]:
    """The live view's reads for ``seconds``: progress() each refresh, events() beside."""
    batch = client.batch(batch_id)
    cpu0, redis0, t0 = time.process_time(), _redis_cpu_s(url), time.perf_counter()

    def follow_events() -> None:
        with contextlib.suppress(TimeoutError):  # no worker: the batch never ends
            for _ in batch.events(timeout=seconds):
                pass

    events = threading.Thread(target=follow_events, daemon=True)
    events.start()
    refreshes = 0
    while time.perf_counter() - t0 < seconds:
        batch.progress()
        refreshes += 1
        time.sleep(follow_every_s(len(batch.record.entries)))
    events.join(timeout=seconds)
    wall = time.perf_counter() - t0
    own, by_redis = time.process_time() - cpu0, _redis_cpu_s(url) - redis0
    return {
        "seconds": round(wall, 2),
        "refreshes": refreshes,
        "follower_cpu_share": round(own / wall, 4),
        "redis_cpu_share": round(by_redis / wall, 4),
        "total_cpu_share": round((own + by_redis) / wall, 4),
    }


def batch_bench(env: BenchEnv, *, quick: bool, say: Callable[[str], None]) -> dict[str, Any]:
    follow_s = FOLLOW_S / 2 if quick else FOLLOW_S
    roots = [_poem_dir(POEMS), _poem_dir(SMALL)]
    try:
        with Client(redis_url=env.redis_url, config=load_config()) as client:
            say(f"batches a) {POEMS} poem files validated and enqueued ...")
            big = _submit(client, roots[0])
            small = _submit(client, roots[1])
            say("batches b) progress() round trips, 10 and 500 jobs ...")
            trips = {
                "small": _round_trips(client, small["batch_id"]),
                "big": _round_trips(client, big["batch_id"]),
            }
            say(f"batches c) following {POEMS} jobs for {follow_s:g} s ...")
            follow = _follow(client, env.redis_url, big["batch_id"], follow_s)
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    return {"submit": big, "progress_round_trips": trips, "follow": follow}


def batch_checks(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    s, t, f = r["submit"], r["progress_round_trips"], r["follow"]
    return [
        (
            f"a) {s['poems']} poems validated + enqueued",
            f"{s['validate_and_enqueue_s']:.2f} s (validate {s['validate_s']:.2f} s)",
            "< 2 s",
            s["validate_and_enqueue_s"] < 2.0,
        ),
        (
            "b) progress() round trips, 10 / 500 jobs",
            f"{t['small']} / {t['big']}",
            "equal, O(1)",
            t["small"] == t["big"],
        ),
        (
            f"c) following {s['poems']} jobs: CPU / one core",
            f"{f['total_cpu_share']:.1%} (follower {f['follower_cpu_share']:.1%}, "
            f"Redis {f['redis_cpu_share']:.1%}; {f['refreshes']} refreshes)",
            "<= 5%",
            f["total_cpu_share"] <= 0.05,
        ),
    ]
