"""The job registry in Redis: status, plan, step outputs and the result.

Any process with the Redis URL can read any job. Step outputs are written with
SET NX, so a redelivered task finds the first writer's output and returns it
without paying for the LLM call again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from enum import StrEnum
from importlib import resources
from typing import Any, cast

import redis
from pydantic import BaseModel, ConfigDict

from vpsweb.models import TranslationOutput, utcnow
from vpsweb.orchestrator import keys
from vpsweb.plan import JobPlan

PLAN_CACHE_SIZE = 512


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class JobRecord(BaseModel):
    """What the registry knows about a job, for status displays and clients."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    status: JobStatus
    plan: JobPlan
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    error_stage: str | None = None


def load_lua(name: str) -> str:
    return resources.files("vpsweb.orchestrator").joinpath(name).read_text(encoding="utf-8")


class JobStore:
    """Reads and writes one Redis; safe to share between threads."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._transition = client.register_script(load_lua("transition.lua"))
        self._plans: OrderedDict[str, JobPlan] = OrderedDict()
        self._plans_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> JobStore:
        return cls(redis.Redis.from_url(url, decode_responses=True, health_check_interval=30))

    # --- registry -------------------------------------------------------------

    def create(self, plan: JobPlan) -> None:
        ttl = plan.retention_s
        created = plan.created_at.isoformat()
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.job(plan.job_id),
                mapping={
                    "status": JobStatus.QUEUED.value,
                    "plan": plan.model_dump_json(),
                    "created_at": created,
                },
            )
            pipe.expire(keys.job(plan.job_id), ttl)
            pipe.zadd(keys.JOBS_INDEX, {plan.job_id: plan.created_at.timestamp()})
            pipe.zremrangebyscore(keys.JOBS_INDEX, "-inf", plan.created_at.timestamp() - ttl)
            pipe.execute()

    def get(self, job_id: str) -> JobRecord | None:
        data = cast(dict[str, str], self.redis.hgetall(keys.job(job_id)))
        if not data or "plan" not in data:
            return None
        return JobRecord(
            job_id=job_id,
            status=JobStatus(data["status"]),
            plan=JobPlan.model_validate_json(data["plan"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            started_at=_dt(data.get("started_at")),
            finished_at=_dt(data.get("finished_at")),
            error=data.get("error") or None,
            error_stage=data.get("error_stage") or None,
        )

    def status(self, job_id: str) -> JobStatus | None:
        value = cast(str | None, self.redis.hget(keys.job(job_id), "status"))
        return JobStatus(value) if value else None

    def transition(
        self,
        job_id: str,
        status: JobStatus,
        ttl: int,
        *,
        only_from: JobStatus | None = None,
        **fields: Any,
    ) -> bool:
        """Change status unless the job already ended (or is not ``only_from``)."""
        if status in TERMINAL:
            fields.setdefault("finished_at", utcnow().isoformat())
        if status is JobStatus.RUNNING:
            fields.setdefault("started_at", utcnow().isoformat())
        args: list[Any] = [status.value, ttl, only_from.value if only_from else ""]
        for k, v in fields.items():
            args += [k, "" if v is None else str(v)]
        return bool(self._transition(keys=[keys.job(job_id)], args=args))

    def mark_running(self, job_id: str, ttl: int) -> None:
        """queued -> running, once; later calls leave the first start time alone."""
        self.transition(job_id, JobStatus.RUNNING, ttl, only_from=JobStatus.QUEUED)

    def plan(self, job_id: str) -> JobPlan | None:
        """The job's plan, cached: plans never change, and every task needs one."""
        with self._plans_lock:
            plan = self._plans.get(job_id)
        if plan is not None:
            return plan
        raw = cast(str | None, self.redis.hget(keys.job(job_id), "plan"))
        if raw is None:
            return None
        plan = JobPlan.model_validate_json(raw)
        with self._plans_lock:
            self._plans[job_id] = plan
            while len(self._plans) > PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        return plan

    def recent_jobs(self, limit: int = 20) -> list[str]:
        return cast(list[str], self.redis.zrevrange(keys.JOBS_INDEX, 0, limit - 1))

    # --- step outputs ------------------------------------------------------------

    def save_step(self, job_id: str, name: str, payload: str, ttl: int) -> str:
        """Store a step's output once; returns the stored one (first writer wins)."""
        key = keys.step(job_id, name)
        if self.redis.set(key, payload, nx=True, ex=ttl):
            return payload
        existing = cast(str | None, self.redis.get(key))
        return existing if existing is not None else payload

    def load_step(self, job_id: str, name: str) -> str | None:
        return cast(str | None, self.redis.get(keys.step(job_id, name)))

    def save_result(self, output: TranslationOutput, ttl: int) -> None:
        self.redis.set(keys.result(output.job_id), output.model_dump_json(), ex=ttl)

    def load_result(self, job_id: str) -> TranslationOutput | None:
        raw = cast(str | None, self.redis.get(keys.result(job_id)))
        return TranslationOutput.model_validate_json(raw) if raw else None

    def job_keys(self, job_id: str) -> list[str]:
        found = list(self.redis.scan_iter(match=keys.step_pattern(job_id), count=100))
        return [k for k in keys.all_job_keys(job_id) if self.redis.exists(k)] + found


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
