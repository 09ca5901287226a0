"""The job registry in memory: the Redis store's rules (see storage.redis.store and its
scripts) kept in one process, each operation one critical section."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from vpsweb.domain.request import Priority
from vpsweb.stages.table import STAGES
from vpsweb.storage.base import (
    Event,
    EventKind,
    JobPlan,
    JobRecord,
    JobStatus,
    JobStore,
    Submission,
)
from vpsweb.storage.memory import state as names
from vpsweb.storage.memory.signals import announce
from vpsweb.storage.memory.state import TERMINAL_VALUES, Keyspace, event_fields, lua_number
from vpsweb.storage.signals import Signal, SignalKind
from vpsweb.storage.spend import SPENT_FIELD

CLAIM_IDLE_MS = 30_000
JOBS = ("jobs",)  # job id -> created timestamp
DEADLINES = ("deadlines",)  # job id -> deadline (epoch s), jobs not ended
SUBMISSIONS = ("submissions",)  # a Stream of {"job": id}: interactive jobs
LANES = tuple(p.value for p in Priority)  # submission lanes, in the order dispatchers read


def submissions(lane: str) -> tuple[str, ...]:
    """The lane's Stream; its pending entries (id -> (consumer, delivered at)) and
    delivered cursor live beside it."""
    return SUBMISSIONS if lane == Priority.INTERACTIVE.value else ("submissions", lane)


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


class MemoryJobStore(JobStore):
    """Options (keyword-only):
    claim_idle_ms: a submission read but not acknowledged for this long (by the store's
      clock) belongs to a dispatcher that died; another one takes it over.
    """

    def __init__(self, space: Keyspace, *, claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self.space = space
        self.claim_idle_ms = claim_idle_ms

    # --- registry -------------------------------------------------------------

    def create(self, plans: list[JobPlan]) -> None:
        if not plans:
            return
        with self.space.lock:
            for plan in plans:
                self._create(plan)
            newest = max(p.created_at.timestamp() for p in plans)
            index = self.space.setdefault(JOBS, dict)
            for job_id in [j for j, at in index.items() if at <= newest - plans[0].retention_s]:
                del index[job_id]

    def _create(self, plan: JobPlan) -> None:
        job_id, ttl, space = plan.job_id, plan.retention_s, self.space
        deadline = plan.deadline_after(STAGES[0].name, plan.created_at.timestamp())
        record = space.setdefault(names.job(job_id), dict)
        record.update(
            status=JobStatus.QUEUED.value,
            plan=plan.model_dump_json(),
            created_at=plan.created_at.isoformat(),
            deadline_at=f"{deadline:.3f}",
        )
        space.expire(names.job(job_id), ttl)
        space.setdefault(DEADLINES, dict)[job_id] = deadline
        space.setdefault(JOBS, dict)[job_id] = plan.created_at.timestamp()
        message = f"queued with {plan.parallel_count} candidate(s), mode {plan.workflow_mode.value}"
        queued = Event(EventKind.JOB_QUEUED, 0, {"status": "queued", "message": message})
        fields = {**event_fields(queued, space.clock()), "progress_percent": "0"}
        space.setdefault(names.progress(job_id), dict).update(fields)
        space.append(names.events(job_id), fields)
        space.expire(names.progress(job_id), ttl)
        space.expire(names.events(job_id), ttl)
        space.append(submissions(plan.priority.value), {"job": job_id})

    def _record(self, job_id: str) -> dict[str, str]:
        return dict(self.space.get(names.job(job_id)) or {})

    def fields(self, job_id: str) -> dict[str, str]:
        """A copy of the job hash's fields (empty: unknown or expired)."""
        with self.space.lock:
            return self._record(job_id)

    def get(self, job_id: str) -> JobRecord | None:
        with self.space.lock:
            return JobRecord.from_hash(job_id, self._record(job_id))

    def status(self, job_id: str) -> JobStatus | None:
        with self.space.lock:
            value = self._record(job_id).get("status")
        return JobStatus(value) if value else None

    def status_and_spent(self, job_id: str) -> tuple[JobStatus | None, float]:
        with self.space.lock:
            record = self._record(job_id)
        value = record.get("status")
        return (JobStatus(value) if value else None), float(record.get(SPENT_FIELD) or 0.0)

    def add_spent(self, job_id: str, cost: float) -> None:
        """Add to the job's spend (as step_stored.lua: never re-creating a job gone)."""
        with self.space.lock:
            record = self.space.get(names.job(job_id))
            if record is not None and cost > 0:
                record[SPENT_FIELD] = repr(float(record.get(SPENT_FIELD) or 0.0) + cost)

    def plan(self, job_id: str) -> JobPlan | None:
        with self.space.lock:
            raw = self._record(job_id).get("plan")
        return JobPlan.model_validate_json(raw) if raw is not None else None

    def mark_running(self, job_id: str, ttl: int) -> None:
        with self.space.lock:
            record = self.space.get(names.job(job_id))
            if record is not None and record.get("status") == JobStatus.QUEUED.value:
                record.update(status=JobStatus.RUNNING.value, started_at=iso(self.space.clock()))

    def end(
        self,
        job_id: str,
        status: JobStatus,
        ttl: int,
        *,
        events: list[Event],
        result: str | None = None,
        error: str | None = None,
        error_stage: str | None = None,
    ) -> bool:
        with self.space.lock:
            space = self.space
            record = space.get(names.job(job_id))
            if record is None or record.get("status") in TERMINAL_VALUES:
                return False
            if result is not None:
                self._store_result(job_id, result, ttl)
            record.update(status=status.value, finished_at=iso(space.clock()))
            if error is not None:
                record["error"] = error
            if error_stage is not None:
                record["error_stage"] = error_stage
            space.expire(names.job(job_id), ttl)
            space.setdefault(DEADLINES, dict).pop(job_id, None)
            announce(space, Signal(SignalKind.ENDED, job_id))
            snapshot = space.setdefault(names.progress(job_id), dict)
            pct = float(snapshot.get("progress_percent") or 0)
            for event in events:
                pct = max(pct, round(event.percent, 2))
                fields = {"progress_percent": lua_number(pct)}
                fields.update(event_fields(event, space.clock()))
                snapshot.update(fields)
                space.append(names.events(job_id), fields)
            snapshot["terminal"] = "1"
            space.expire(names.progress(job_id), ttl)
            space.expire(names.events(job_id), ttl)
            return True

    def _store_result(self, job_id: str, result: str, ttl: int) -> None:
        """The result without its request (the plan holds it), stored once; the step
        outputs it repeats go (each poem and translation is stored once per job)."""
        plan = self.plan(job_id)
        if plan is not None:
            data = json.loads(result)
            data.pop("request", None)
            result = json.dumps(data, ensure_ascii=False)
            for key in [k for s in STAGES for k in s.keys(plan)]:
                self.space.delete(names.step(job_id, key))
        if self.space.get(("result", job_id)) is None:
            self.space.put(("result", job_id), result, ttl)

    def recent_jobs(self, limit: int = 20) -> list[str]:
        with self.space.lock:
            index = dict(self.space.get(JOBS) or {})
        return sorted(index, key=lambda j: (index[j], j), reverse=True)[:limit]

    def extend_deadline(self, job_id: str, at: float) -> None:
        with self.space.lock:
            record = self.space.get(names.job(job_id))
            if record is None or record.get("status") in TERMINAL_VALUES:
                return
            if at <= float(record.get("deadline_at") or 0):
                return
            record["deadline_at"] = f"{at:.3f}"
            deadlines = self.space.setdefault(DEADLINES, dict)
            if job_id in deadlines:  # as Redis's ZADD XX: not a job waiting for a person
                deadlines[job_id] = at

    def deadline(self, job_id: str) -> float | None:
        with self.space.lock:
            value = self._record(job_id).get("deadline_at")
        return float(value) if value else None

    def forget_deadline(self, job_id: str) -> None:
        with self.space.lock:
            status = self.status(job_id)
            if status is None or status.terminal or status is JobStatus.WAITING:
                self.space.setdefault(DEADLINES, dict).pop(job_id, None)

    def overdue(self, now: float, limit: int = 100) -> list[str]:
        with self.space.lock:
            index = dict(self.space.get(DEADLINES) or {})
        return sorted((j for j, at in index.items() if at <= now), key=lambda j: (index[j], j))[
            :limit
        ]

    # --- step outputs and results ---------------------------------------------

    def save_step(self, job_id: str, key: str, payload: str, ttl: int) -> str:
        with self.space.lock:
            existing = self.space.get(names.step(job_id, key))
            if existing is not None:
                return str(existing)
            self.space.put(names.step(job_id, key), payload, ttl)
            return payload

    def load_steps(self, job_id: str, keys: list[str]) -> list[str | None]:
        with self.space.lock:
            return [self.space.get(names.step(job_id, k)) for k in keys]

    def load_result(self, job_id: str) -> str | None:
        with self.space.lock:
            raw = self.space.get(("result", job_id))
            plan = self._record(job_id).get("plan")
        if raw is None or plan is None:
            return raw
        data = json.loads(raw)
        data.setdefault("request", json.loads(plan)["request"])
        return json.dumps(data, ensure_ascii=False)

    # --- submissions ----------------------------------------------------------

    def next_submissions(self, consumer: str, *, block_ms: int, count: int) -> list[Submission]:
        with self.space.lock:
            found = [s for lane in LANES for s in self._claim_stale(lane, consumer, count)]
            if not found:
                found = self._new(consumer, count)
            if not found and block_ms > 0:
                self.space.changed.wait(block_ms / 1000)
                found = self._new(consumer, count)
            return found

    def _claim_stale(self, lane: str, consumer: str, count: int) -> list[Submission]:
        pending: dict[str, Any] = self.space.setdefault((*submissions(lane), "pending"), dict)
        now = self.space.clock()
        stale = [i for i, (_c, at) in pending.items() if now - at >= self.claim_idle_ms / 1000]
        live = {i: f["job"] for i, f in self._stream(lane).entries}
        for entry_id in [i for i in stale if i not in live]:
            del pending[entry_id]  # deleted meanwhile
        taken = [i for i in stale if i in live][:count]
        for entry_id in taken:
            pending[entry_id] = (consumer, now)
        return [Submission(i, live[i], lane) for i in taken]

    def _new(self, consumer: str, count: int) -> list[Submission]:
        found = []
        for lane in LANES:  # up to ``count`` of each lane, as one XREADGROUP of both
            at = (*submissions(lane), "delivered")
            fresh = self._stream(lane).after(self.space.get(at) or "0-0", count)
            pending = self.space.setdefault((*submissions(lane), "pending"), dict)
            for entry_id, _fields in fresh:
                pending[entry_id] = (consumer, self.space.clock())
            if fresh:
                self.space.put(at, fresh[-1][0])
            found += [Submission(i, f["job"], lane) for i, f in fresh]
        return found

    def _stream(self, lane: str) -> Any:
        return self.space.setdefault(submissions(lane), names.Stream)

    def ack_submissions(self, entries: list[Submission]) -> None:
        with self.space.lock:
            for lane in LANES:
                done = {e.entry_id for e in entries if e.lane == lane}
                pending = self.space.setdefault((*submissions(lane), "pending"), dict)
                for entry_id in done:
                    pending.pop(entry_id, None)
                stream = self._stream(lane)
                stream.entries = [e for e in stream.entries if e[0] not in done]

    def close(self) -> None:
        pass
