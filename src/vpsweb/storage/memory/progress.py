"""Progress in memory: the rules of emit.lua, candidate_finished.lua and
straggler_check.lua (counted once, milestones once, a percentage that never goes
back, nothing after the terminal event), each one critical section."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from vpsweb.domain.progress import milestones
from vpsweb.storage.base import (
    CandidateEnd,
    Event,
    ProgressEvent,
    ProgressLog,
    ProgressSnapshot,
)
from vpsweb.storage.memory import state as names
from vpsweb.storage.memory.state import Keyspace, event_fields, lua_number
from vpsweb.storage.spend import SPENT_FIELD


class MemoryProgressLog(ProgressLog):
    """Options (keyword-only):
    block_ms: how long a follower waits (real time) for news before ``on_idle``.
    """

    def __init__(self, space: Keyspace, *, block_ms: int = 1000) -> None:
        self.space = space
        self.block_ms = block_ms

    def emit(self, job_id: str, event: Event, ttl: int, *, once: str = "") -> bool:
        with self.space.lock:
            snap = self.space.setdefault(names.progress(job_id), dict)
            if snap.get("terminal") == "1":
                return False
            if once:
                if f"once:{once}" in snap:
                    return False
                snap[f"once:{once}"] = "1"
            current = max(float(snap.get("progress_percent") or 0), round(event.percent, 2))
            fields = {"progress_percent": lua_number(current)}
            fields.update(event_fields(event, self.space.clock()))
            snap.update(fields)
            self.space.append(names.events(job_id), fields)
            self.space.expire(names.progress(job_id), ttl)
            self.space.expire(names.events(job_id), ttl)
            return True

    def candidate_finished(self, job_id: str, end: CandidateEnd, ttl: int) -> tuple[int, bool]:
        return self.count_item(job_id, end, ttl)

    def count_item(self, job_id: str, item: CandidateEnd, ttl: int) -> tuple[int, bool]:
        with self.space.lock:
            snap = self.space.setdefault(names.progress(job_id), dict)
            done = self.space.setdefault(("finished", job_id), set)
            if snap.get("terminal") == "1" or str(item.index) in done:
                return 0, False
            done.add(str(item.index))
            self.space.expire(("finished", job_id), ttl)
            outcome = "late" if item.late else "succeeded" if item.ok else "failed"
            field = "successful" if outcome == "succeeded" else outcome
            snap[field] = str(int(snap.get(field) or 0) + 1)
            if outcome == "succeeded" and item.quorum:
                self._toward_quorum(job_id, item, int(snap[field]), ttl)
            return self._publish(job_id, item, outcome, len(done), ttl)

    def _toward_quorum(self, job_id: str, item: CandidateEnd, successes: int, ttl: int) -> None:
        """With a straggler quorum, the success that reaches it sets when the items
        still running become late: ``grace`` x the median success duration from now."""
        durations = self.space.setdefault(("durations", job_id), list)
        durations.append(float(item.details.get("duration_s") or 0.0))
        self.space.expire(("durations", job_id), ttl)
        if successes != item.quorum:
            return
        d = sorted(durations)
        median = d[(len(d) + 1) // 2 - 1]
        if len(d) % 2 == 0:
            median = (d[len(d) // 2 - 1] + d[len(d) // 2]) / 2
        at = self.space.clock() + item.grace * median
        self.space.get(names.progress(job_id))["late_at"] = f"{at:.3f}"

    def _publish(
        self, job_id: str, item: CandidateEnd, outcome: str, k: int, ttl: int
    ) -> tuple[int, bool]:
        """The item's own event, and the milestone it reached (if any), both with the
        percentage after it."""
        snap = self.space.get(names.progress(job_id))
        n, now = item.n, f"{self.space.clock():.3f}"
        late = int(snap.get("late") or 0)
        counted = f"{k - late}/{n} completed" + (f", {late} late" if late else "")
        is_milestone = k in milestones(n)
        after = snap.get("progress_percent") or "0"
        current = float(after)
        if is_milestone:
            current = math.floor(max(current, item.end_percent * k / n) * 100 + 0.5) / 100
            after = lua_number(current)
        own = {"event": "candidate_finished", "stage": item.stage, "status": outcome}
        own |= {"progress_percent": after, "index": str(item.index)}
        own |= {"parallel_progress": counted, "ts": now}
        details = json.loads(json.dumps({k: v for k, v in item.details.items() if v is not None}))
        own |= {name: _lua_string(value) for name, value in details.items()}
        self.space.append(names.events(job_id), own)
        self.space.expire(names.events(job_id), ttl)
        if not is_milestone:
            return k, False
        ok, bad = int(snap.get("successful") or 0), int(snap.get("failed") or 0)
        status = "failed" if k == n and ok == 0 else "completed" if k == n else "running"
        message = f"{k} of {n} candidates finished ({ok} ok, {bad} failed"
        message += (f", {late} late" if late else "") + ")"
        fields = {"event": "milestone", "stage": item.stage, "status": status}
        fields |= {"progress_percent": lua_number(current), "parallel_progress": counted}
        fields |= {"successful": str(ok), "failed": str(bad), "late": str(late)}
        fields |= {"message": message, "ts": now}
        snap.update(fields)
        self.space.append(names.events(job_id), fields)
        self.space.expire(names.progress(job_id), ttl)
        self.space.expire(names.events(job_id), ttl)
        return k, True

    def straggler_check(self, job_id: str) -> tuple[str | None, float | None, float]:
        with self.space.lock:
            job = self.space.get(names.job(job_id)) or {}
            at = (self.space.get(names.progress(job_id)) or {}).get("late_at")
            left = None if at is None else round(float(at) - self.space.clock(), 4)
        return job.get("status") or None, left, float(job.get(SPENT_FIELD) or 0.0)

    def snapshot(self, job_id: str) -> ProgressSnapshot:
        with self.space.lock:
            data = dict(self.space.get(names.progress(job_id)) or {})
        clean: dict[str, Any] = {
            k: v for k, v in data.items() if not k.startswith("once:") and v != ""
        }
        clean["terminal"] = data.get("terminal") == "1"
        return ProgressSnapshot.model_validate(clean)

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
            wait = self.block_ms / 1000
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"job {job_id}: no terminal event within {timeout:g}s")
                wait = max(0.001, min(wait, remaining))
            batch = self._read(job_id, last, wait)
            if not batch and on_idle is not None:
                yield from on_idle()
            for entry_id, fields in batch:
                last = entry_id
                event = ProgressEvent.from_fields(entry_id, fields)
                yield event
                if event.terminal:
                    return

    def _read(self, job_id: str, last: str, wait_s: float) -> list[tuple[str, dict[str, str]]]:
        with self.space.lock:
            found = self._after(job_id, last)
            if not found:
                self.space.changed.wait(wait_s)
                found = self._after(job_id, last)
            return found

    def _after(self, job_id: str, last: str) -> list[tuple[str, dict[str, str]]]:
        stream = self.space.get(names.events(job_id))
        return [] if stream is None else stream.after(last, 100)


def _lua_string(value: Any) -> str:
    """A JSON value as the script's ``tostring`` writes it after cjson.decode."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return lua_number(value)
    return str(value)
