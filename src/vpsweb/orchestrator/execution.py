"""Worker-side execution of one job step: the glue between tasks, stages and the store.

``run_step`` is what every stage's Celery task does, minus Celery: load the job,
stop if it ended, reuse a stored output if this is a redelivery, run the stage,
store its output, and record progress. ``finalize`` and ``fail_job`` end a job
with one atomic write of status, result and terminal event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel

from vpsweb.config import AppConfig, load_config
from vpsweb.errors import Cancelled, JobGone
from vpsweb.llm.client import LLMClient, OpenAICompatibleClient
from vpsweb.models import utcnow
from vpsweb.plan import JobPlan
from vpsweb.progress import EventKind
from vpsweb.result import assemble
from vpsweb.stages.base import Prior, StageContext
from vpsweb.stages.table import FINALIZE_DISPLAY, STAGES, Stage, previous, stage_bounds
from vpsweb.storage import Event, JobStatus, Storage, connect

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Services:
    """What a worker process shares between its threads: the store, its own config
    (prompts, routing) and one LLM client."""

    storage: Storage
    config: AppConfig
    llm: LLMClient


_llm_lock = threading.Lock()


@lru_cache(maxsize=4)
def services(store_url: str) -> Services:
    with _llm_lock:
        return Services(storage=connect(store_url), config=load_config(), llm=_default_llm())


@lru_cache(maxsize=1)
def _default_llm() -> LLMClient:
    return OpenAICompatibleClient()


class JobRun:
    """One task's view of its job."""

    def __init__(self, svc: Services, job_id: str) -> None:
        self.svc = svc
        self.jobs = svc.storage.jobs
        self.progress = svc.storage.progress
        status = self.jobs.status(job_id)
        plan = self.jobs.plan(job_id) if status is not None else None
        if status is None or plan is None:
            raise JobGone(f"job {job_id} is unknown or has expired")
        if status.terminal:
            raise Cancelled(f"job {job_id} already {status.value}")
        self.job_id = job_id
        self.plan: JobPlan = plan
        self.ttl = plan.retention_s

    def check(self) -> None:
        """Called before every LLM call: an ended job spends nothing more."""
        status = self.jobs.status(self.job_id)
        if status is None or status.terminal:
            raise Cancelled(f"job {self.job_id} ended ({status.value if status else 'expired'})")

    def context(self) -> StageContext:
        return StageContext(
            plan=self.plan, prompts=self.svc.config.prompts, llm=self.svc.llm, check=self.check
        )

    def outputs(self, s: Stage) -> Any:
        """A stage's stored output (for a fan-out stage, every item; a missing item
        becomes its stage's "lost" record so the next stage can go on without it)."""
        step_keys = s.keys(self.plan)
        raw = self.jobs.load_steps(self.job_id, step_keys)
        if not s.fan_out:
            if raw[0] is None:
                raise RuntimeError(f"job {self.job_id}: output of {s.name} is missing")
            return s.output.model_validate_json(raw[0])
        assert s.lost is not None
        return [
            s.output.model_validate_json(r) if r is not None else s.lost(self.plan, i, "lost")
            for i, r in enumerate(raw)
        ]

    def prior(self, names: tuple[str, ...]) -> Prior:
        by_name = {s.name: s for s in STAGES}
        return Prior({name: self.outputs(by_name[name]) for name in names})

    def once(self, key: str, model: type[M], produce: Callable[[], M]) -> M:
        """The stored output if a previous delivery finished it, else produce and store."""
        stored = self.jobs.load_step(self.job_id, key)
        if stored is not None:
            return model.model_validate_json(stored)
        output = produce()
        kept = self.jobs.save_step(self.job_id, key, output.model_dump_json(), self.ttl)
        return model.model_validate_json(kept)

    def stage_event(self, s: Stage, *, started: bool, message: str) -> None:
        """A stage's start (at its lower bound) or end (upper bound), once each."""
        start, end = stage_bounds(self.plan.progress_weights, s.name)
        model = self.plan.call(s.name, 0 if s.fan_out else None).model.model
        kind = EventKind.STAGE_STARTED if started else EventKind.STAGE_COMPLETED
        fields = {
            "stage": s.display_name,
            "status": "running" if started else "completed",
            "model": model,
            "message": message,
        }
        once = f"{'start' if started else 'end'}:{s.name}"
        self.progress.emit(
            self.job_id, Event(kind, start if started else end, fields), self.ttl, once=once
        )


def _produce(run: JobRun, s: Stage, index: int | None) -> BaseModel:
    prior = run.prior(s.needs)
    if not s.fan_out:
        return s.run(run.context(), prior, index)
    assert s.lost is not None and index is not None
    try:
        return s.run(run.context(), prior, index)
    except Cancelled:
        raise
    except Exception as exc:
        # A bug or a broken template in one item must not lose the others.
        return s.lost(run.plan, index, f"internal error: {type(exc).__name__}: {exc}")


def run_step(svc: Services, s: Stage, job_id: str, index: int | None = None) -> dict[str, Any]:
    run = JobRun(svc, job_id)
    before = previous(s)
    if before is not None and before.fan_out:
        run.stage_event(before, started=False, message=before.summary(run.outputs(before)))
    run.jobs.mark_running(job_id, run.ttl)
    call = run.plan.call(s.name, index)
    run.stage_event(s, started=True, message=f"{s.display_name} started ({call.model.model})")
    output = run.once(s.key(index), s.output, lambda: _produce(run, s, index))
    if s.fan_out:
        assert index is not None
        ok = bool(getattr(output, "ok", True))
        _, end = stage_bounds(run.plan.progress_weights, s.name)
        run.progress.candidate_finished(
            job_id,
            index,
            ok=ok,
            n=run.plan.parallel_count,
            end_percent=end,
            stage=s.display_name,
            ttl=run.ttl,
        )
        return {"job_id": job_id, "index": index, "status": "succeeded" if ok else "failed"}
    if s is not STAGES[-1]:  # the last stage's end is announced with the result
        run.stage_event(s, started=False, message=s.summary(output))
    return {"job_id": job_id, "step": s.name}


def finalize(svc: Services, job_id: str) -> dict[str, Any]:
    """Assemble and store the result, and end the job: one write, the first one stands."""
    run = JobRun(svc, job_id)
    plan = run.plan
    output = assemble(plan, {s.name: run.outputs(s) for s in STAGES}, utcnow())
    last = STAGES[-1]
    _, end = stage_bounds(plan.progress_weights, last.name)
    model = plan.call(last.name).model.model
    events = [
        Event(
            EventKind.STAGE_COMPLETED,
            end,
            {
                "stage": last.display_name,
                "status": "completed",
                "model": model,
                "message": last.summary(getattr(output, last.result_field)),
            },
        ),
        Event(
            EventKind.JOB_FINISHED,
            100,
            {"status": "succeeded", "stage": FINALIZE_DISPLAY, "message": "translation finished"},
        ),
    ]
    svc.storage.jobs.end(
        job_id, JobStatus.SUCCEEDED, run.ttl, events=events, result=output.model_dump_json()
    )
    return {"job_id": job_id, "status": "succeeded"}


def failure_events(stage: str, cause: str) -> list[Event]:
    return [
        Event(
            EventKind.STAGE_FAILED,
            0,
            {"stage": stage, "status": "failed", "error": cause, "message": f"{stage} failed"},
        ),
        Event(
            EventKind.JOB_FINISHED,
            0,
            {
                "status": "failed",
                "stage": stage,
                "error": cause,
                "message": f"job failed in {stage}: {cause}",
            },
        ),
    ]


def fail_job(storage: Storage, job_id: str, stage: str, cause: str) -> bool:
    """Mark the job failed (unless it already ended) and close its event stream."""
    plan = storage.jobs.plan(job_id)
    if plan is None:
        return False
    return storage.jobs.end(
        job_id,
        JobStatus.FAILED,
        plan.retention_s,
        events=failure_events(stage, cause),
        error=cause,
        error_stage=stage,
    )
