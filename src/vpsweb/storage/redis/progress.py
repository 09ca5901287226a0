"""Progress in Redis: counters, milestones, a monotonic percentage and an event stream.

Both writes are Lua scripts, so that concurrent workers and redelivered tasks
cannot double-count a candidate, publish a milestone twice, move the percentage
back, or append anything after the terminal event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import redis

from vpsweb.domain.progress import ProgressEvent, ProgressSnapshot, milestones
from vpsweb.redis_target import Durability
from vpsweb.storage.base import CandidateEnd, Event, ProgressLog
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.connection_errors import translating
from vpsweb.storage.redis.durability import ReplicaAcks
from vpsweb.storage.redis.lua import Lua
from vpsweb.storage.redis.store import STREAM_MAXLEN, event_fields
from vpsweb.storage.spend import SPENT_FIELD

# What XREAD returns with decode_responses=True: [(stream, [(id, fields), ...])].
StreamBatch = list[tuple[str, list[tuple[str, dict[str, str]]]]] | None


def read_wait(block_ms: int, deadline: float | None, job_id: str, timeout: float | None) -> int:
    """How long the next blocking read of a job's stream may wait (ms): the block, cut
    to what is left of the follower's ``timeout``; TimeoutError once nothing is left.
    Shared by the sync and the asyncio readers."""
    if deadline is None:
        return block_ms
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"job {job_id}: no terminal event within {timeout:g}s")
    return max(1, min(block_ms, int(remaining * 1000)))


@translating
class RedisProgressLog(ProgressLog):
    """Cheap to build; holds no job state of its own. ``acks``: a terminal event (or
    snapshot) is reported once a replica has it (ReplicaAcks.fence; default: at once)."""

    def __init__(
        self, client: redis.Redis, *, block_ms: int = 1000, acks: ReplicaAcks | None = None
    ) -> None:
        self.redis = client
        self.acks = acks or ReplicaAcks(client, Durability())
        self.block_ms = block_ms
        self._emit = Lua(client, "emit.lua")
        self._finished = Lua(client, "candidate_finished.lua")
        self._straggler = Lua(client, "straggler_check.lua")

    def emit(self, job_id: str, event: Event, ttl: int, *, once: str = "") -> bool:
        return bool(self.emit_on(self.redis, job_id, event, ttl, once=once))

    def emit_on(self, client: Any, job_id: str, event: Event, ttl: int, *, once: str) -> Any:
        """emit.lua on ``client`` (this store's connection, or a pipeline)."""
        names, args = emit_call(job_id, event, ttl, once)
        return self._emit(keys=names, args=args, client=client)

    def candidate_finished(self, job_id: str, end: CandidateEnd, ttl: int) -> tuple[int, bool]:
        k, published = self.candidate_finished_on(self.redis, job_id, end, ttl)
        return int(k), bool(published)

    def candidate_finished_on(self, client: Any, job_id: str, end: CandidateEnd, ttl: int) -> Any:
        """candidate_finished.lua on ``client`` (this store's connection, or a pipeline)."""
        d = end.details
        args = [
            end.index,
            "late" if end.late else "succeeded" if end.ok else "failed",
            end.n,
            ttl,
            STREAM_MAXLEN,
            end.end_percent,
            f"{time.time():.3f}",
            end.stage,
            json.dumps({k: v for k, v in d.items() if v is not None}),
            end.quorum or 0,
            end.grace,
            d.get("duration_s") or 0.0,
            *milestones(end.n),
        ]
        names = [
            keys.finished_items(job_id),
            keys.progress(job_id),
            keys.events(job_id),
            keys.durations(job_id),
        ]
        return self._finished(keys=names, args=args, client=client)

    def straggler_check(self, job_id: str) -> tuple[str | None, float | None, float]:
        names = [keys.job(job_id), keys.progress(job_id)]
        status, left, spent = self._straggler(keys=names, args=[SPENT_FIELD])
        return (status or None), (float(left) if left else None), float(spent or 0.0)

    def snapshot(self, job_id: str) -> ProgressSnapshot:
        snap = snapshot_of(cast(dict[str, str], self.redis.hgetall(keys.progress(job_id))))
        if snap.terminal:
            self.acks.fence(job_id)
        return snap

    def events(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        start: str = "0-0",
        on_idle: Callable[[], list[ProgressEvent]] | None = None,
    ) -> Iterator[ProgressEvent]:
        deadline = None if timeout is None else time.monotonic() + timeout
        last = start
        while True:
            wait = read_wait(self.block_ms, deadline, job_id, timeout)
            batch = self._read(job_id, last, wait)
            if not batch and on_idle is not None:
                yield from on_idle()
            for _name, entries in batch or []:
                for entry_id, fields in entries:
                    last = entry_id
                    event = ProgressEvent.from_fields(entry_id, fields)
                    if event.terminal:
                        self._fence(job_id, deadline, timeout)
                    yield event
                    if event.terminal:
                        return

    def _fence(self, job_id: str, deadline: float | None, timeout: float | None) -> None:
        """The terminal event's fence, retried while Redis is unreachable (a failover:
        the new primary answers it), within the follower's ``timeout``."""
        while True:
            try:
                self.acks.fence(job_id)
                return
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(min(1.0, read_wait(self.block_ms, deadline, job_id, timeout) / 1000))

    def _read(self, job_id: str, last: str, wait_ms: int) -> StreamBatch:
        """One blocking read; an unreachable Redis (a restart, a failover) reads as
        nothing new, after a pause, so that followers keep waiting instead of dying."""
        try:
            return cast(
                StreamBatch,
                self.redis.xread({keys.events(job_id): last}, block=wait_ms, count=100),
            )
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(min(1.0, wait_ms / 1000))
            return None


def emit_call(job_id: str, event: Event, ttl: int, once: str) -> tuple[list[str], list[Any]]:
    """emit.lua's keys and arguments."""
    args: list[Any] = [round(event.percent, 2), ttl, STREAM_MAXLEN, once]
    for k, v in event_fields(event).items():
        args += [k, v]
    return [keys.progress(job_id), keys.events(job_id)], args


def snapshot_of(data: dict[str, str]) -> ProgressSnapshot:
    """The snapshot in a progress hash's fields."""
    clean: dict[str, Any] = {k: v for k, v in data.items() if not k.startswith("once:") and v != ""}
    clean["terminal"] = data.get("terminal") == "1"
    return ProgressSnapshot.model_validate(clean)
