"""Leases, presence, usage and manual answers in memory: the rules of the Redis
scripts beside storage.redis, each operation one critical section."""

from __future__ import annotations

import json
from typing import Any

from vpsweb.storage.base import JobStatus, Leases, ManualAnswers, Presence, UsageLog
from vpsweb.storage.leases import Renewal
from vpsweb.storage.memory import state as names
from vpsweb.storage.memory.state import TERMINAL_VALUES, Keyspace
from vpsweb.storage.memory.store import DEADLINES, SUBMISSIONS


class MemoryLeases(Leases):
    def __init__(self, space: Keyspace) -> None:
        self.space = space

    def acquire(self, job_id: str, key: str, owner: str, ttl_s: float) -> bool:
        with self.space.lock:
            name = ("lease", job_id, key)
            if self.space.get(name) is not None:
                return False
            self.space.put(name, owner, _ms(ttl_s))
            return True

    def renew(self, job_id: str, key: str, owner: str, ttl_s: float) -> bool:
        return self._renew(("lease", job_id, key), owner, ttl_s)

    def _renew(self, name: names.Name, owner: str, ttl_s: float) -> bool:
        """Extend it if we hold it, re-take it if it lapsed and is free."""
        with self.space.lock:
            holder = self.space.get(name)
            if holder is not None and holder != owner:
                return False
            self.space.put(name, owner, _ms(ttl_s))
            return True

    def keep(self, job_id: str, key: str, owner: str, ttl_s: float) -> Renewal:
        """lease_keep.lua: the renewal, the job's status and the quorum's deadline."""
        with self.space.lock:
            held = self._renew(("lease", job_id, key), owner, ttl_s)
            job = self.space.get(names.job(job_id)) or {}
            at = (self.space.get(names.progress(job_id)) or {}).get("late_at")
            left = None if at is None else round(float(at) - self.space.clock(), 4)
        return Renewal(held, job.get("status") or None, left)

    def release(self, job_id: str, key: str, owner: str) -> None:
        with self.space.lock:
            if self.space.get(("lease", job_id, key)) == owner:
                self.space.delete(("lease", job_id, key))

    def holder(self, job_id: str, key: str) -> str | None:
        with self.space.lock:
            value: str | None = self.space.get(("lease", job_id, key))
            return value

    def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        return self._renew(("lock", name), owner, ttl_s)


def _ms(ttl_s: float) -> float:
    """A time to live as Redis keeps it (PX: whole milliseconds)."""
    return int(ttl_s * 1000) / 1000


class MemoryPresence(Presence):
    def __init__(self, space: Keyspace) -> None:
        self.space = space

    def beat(self, worker: str, queues: list[str], ttl_s: float) -> None:
        with self.space.lock:
            workers = self.space.setdefault(("workers",), dict)
            now = self.space.clock()
            for gone in [w for w, (at, _q) in workers.items() if at <= now and w != worker]:
                del workers[gone]
            workers[worker] = (now + ttl_s, sorted(queues))

    def leave(self, worker: str) -> None:
        with self.space.lock:
            self.space.setdefault(("workers",), dict).pop(worker, None)

    def live(self) -> dict[str, list[str]]:
        with self.space.lock:
            workers = dict(self.space.get(("workers",)) or {})
            now = self.space.clock()
        alive = sorted((at, w) for w, (at, _q) in workers.items() if at >= now)
        return {w: list(workers[w][1]) for _at, w in alive}


class MemoryUsageLog(UsageLog):
    def __init__(self, space: Keyspace) -> None:
        self.space = space

    def record(self, summary_json: str, counters: dict[str, float], ttl: int) -> None:
        at = float(json.loads(summary_json)["finished_at"])
        with self.space.lock:
            summaries = self.space.setdefault(("usage", "jobs"), dict)
            if summary_json in summaries:
                return  # this very summary was recorded already: counted once
            summaries[summary_json] = at
            totals = self.space.setdefault(("usage", "counters"), dict)
            for field, amount in counters.items():
                totals[field] = totals.get(field, 0.0) + float(amount)
            cutoff = round(at - ttl, 3)
            for old in [s for s, when in summaries.items() if when < cutoff]:
                del summaries[old]
            self.space.expire(("usage", "jobs"), ttl)

    def summaries(self, since: float) -> list[str]:
        with self.space.lock:
            found = dict(self.space.get(("usage", "jobs")) or {})
        return [s for s, at in sorted(found.items(), key=lambda x: (x[1], x[0])) if at >= since]

    def counters(self) -> dict[str, float]:
        with self.space.lock:
            return dict(self.space.get(("usage", "counters")) or {})


class MemoryManualAnswers(ManualAnswers):
    def __init__(self, space: Keyspace) -> None:
        self.space = space

    def park(self, job_id: str, key: str, prompt_json: str, ttl: int) -> bool:
        with self.space.lock:
            record = self.space.get(names.job(job_id))
            if record is None or record.get("status") in TERMINAL_VALUES:
                return False
            self.space.setdefault(("pending", job_id), dict)[key] = prompt_json
            self.space.expire(("pending", job_id), ttl)
            record["status"] = JobStatus.WAITING.value
            self.space.setdefault(DEADLINES, dict).pop(job_id, None)  # a person has none
            return True

    def pending(self, job_id: str) -> dict[str, str]:
        with self.space.lock:
            return dict(self.space.get(("pending", job_id)) or {})

    def answer_of(self, job_id: str, key: str) -> str | None:
        with self.space.lock:
            value: str | None = (self.space.get(("answers", job_id)) or {}).get(key)
            return value

    def answer(
        self, job_id: str, key: str, text: str, *, stage_keys: list[str], deadline: float, ttl: int
    ) -> str:
        with self.space.lock:
            record = self.space.get(names.job(job_id))
            if record is None:
                return "gone"
            if record.get("status") in TERMINAL_VALUES:
                return "ended"
            answers = self.space.setdefault(("answers", job_id), dict)
            if key in answers:  # resumed again until it starts, as the Redis store
                queued = record.get("status") == JobStatus.QUEUED.value
                if not queued or any(k not in answers for k in stage_keys):
                    return "answered"
                return self._resume(job_id, record, deadline)
            pending = self.space.get(("pending", job_id)) or {}
            if key not in pending:
                return "not_pending"
            answers[key] = text
            del pending[key]
            self.space.expire(("answers", job_id), ttl)
            if any(k not in answers for k in stage_keys):
                return "stored"
            return self._resume(job_id, record, deadline)

    def _resume(self, job_id: str, record: dict[str, Any], deadline: float) -> str:
        record.update(status=JobStatus.QUEUED.value, deadline_at=f"{deadline:.3f}")
        self.space.setdefault(DEADLINES, dict)[job_id] = float(f"{deadline:.3f}")
        self.space.append(SUBMISSIONS, {"job": job_id})
        return "resumed"
