"""How a job ends when it does not succeed, and what it spent: failed, stalled, cancelled.

Celery-free and written against the storage interfaces, because three parties end
jobs: the worker whose step failed, the sweeper in the workers, and a client that
finds the job past its deadline with nobody left to say so. Every ending is one
atomic write of status and terminal event (``JobStore.end``), so whoever comes
first wins and the others change nothing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from vpsweb.domain.models import StepMetrics, Totals
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import EventKind, ProgressSnapshot
from vpsweb.domain.result import compute_totals
from vpsweb.errors import one_line
from vpsweb.monitoring.usage import record_ending
from vpsweb.stages.table import FINALIZE_DISPLAY, STAGES
from vpsweb.storage import Event, JobStatus, Storage

QUEUED_STAGE = "Queued"


def failed_key(step_key: str) -> str:
    """Where the usage of a step that failed is kept, so that totals stay honest."""
    return f"{step_key}.failed"


def failure_events(stage: str, cause: str) -> list[Event]:
    fields = {"stage": stage, "status": "failed", "error": cause}
    return [
        Event(EventKind.STAGE_FAILED, 0, {**fields, "message": f"{stage} failed"}),
        Event(EventKind.JOB_FINISHED, 0, {**fields, "message": f"job failed in {stage}: {cause}"}),
    ]


def fail_job(
    storage: Storage,
    job_id: str,
    stage: str,
    cause: str,
    *,
    step_key: str | None = None,
    metrics: StepMetrics | None = None,
) -> bool:
    """Mark the job failed (unless it already ended) and close its event stream; the
    failing step's usage is kept first, so ``spent`` includes it. The cause is stored
    and sent as one line: it is shown in one-line progress output and CLI errors."""
    cause = one_line(cause)
    plan = storage.jobs.plan(job_id)
    if plan is None:
        return False
    if step_key is not None and metrics is not None:
        storage.jobs.save_step(
            job_id, failed_key(step_key), metrics.model_dump_json(), plan.retention_s
        )
    ended = storage.jobs.end(
        job_id,
        JobStatus.FAILED,
        plan.retention_s,
        events=failure_events(stage, cause),
        error=cause,
        error_stage=stage,
    )
    if ended:  # only the call that ended the job counts its usage
        record_ending(storage, plan, JobStatus.FAILED, spent, stage)
    return ended


def stall_job(storage: Storage, job_id: str, now: float | None = None) -> bool:
    """Fail a job that made no progress past its deadline, naming the stage it was in.
    False if it is not overdue (or already ended)."""
    now = time.time() if now is None else now
    status, deadline = storage.jobs.status(job_id), storage.jobs.deadline(job_id)
    if not overdue(status, deadline, now) or deadline is None:
        return False
    stage, cause = stall_cause(storage.progress.snapshot(job_id), deadline)
    return fail_job(storage, job_id, stage, cause)


def overdue(status: JobStatus | None, deadline: float | None, now: float) -> bool:
    """Past its deadline and not ended (a job waiting for a person has no deadline)."""
    if status is None or status.terminal or status is JobStatus.WAITING:
        return False
    return deadline is not None and deadline <= now


def stall_cause(snap: ProgressSnapshot, deadline: float) -> tuple[str, str]:
    """The stage a stalled job is failed in, and the cause it is failed with."""
    stage = _stalled_stage(snap)
    since = datetime.fromtimestamp(deadline, UTC).isoformat(timespec="seconds")
    cause = (
        f"stalled: no progress in {stage} before the job's deadline ({since}); "
        "no worker finished or retried its step in time"
    )
    return stage, cause


def _stalled_stage(snap: ProgressSnapshot) -> str:
    """The stage that should be running: after a completed stage, the next one."""
    names = [s.display_name for s in STAGES]
    if snap.stage in names and snap.status == "completed":
        i = names.index(snap.stage)
        return names[i + 1] if i + 1 < len(names) else FINALIZE_DISPLAY
    return snap.stage or QUEUED_STAGE


def cancel_events(reason: str = "cancelled by user") -> list[Event]:
    return [Event(EventKind.JOB_FINISHED, 0, {"status": "cancelled", "message": reason})]


def cancel_job(
    storage: Storage, job_id: str, plan: JobPlan, reason: str = "cancelled by user"
) -> bool:
    events = cancel_events(reason)
    ended = storage.jobs.end(job_id, JobStatus.CANCELLED, plan.retention_s, events=events)
    if ended:  # only the call that ended the job counts its usage
        record_ending(storage, plan, JobStatus.CANCELLED, spent)
    return ended


def spent(storage: Storage, plan: JobPlan) -> Totals:
    """Every billed call of the job so far: finished steps, failed candidates, and the
    steps that failed the job."""
    return spent_from(plan, storage.jobs.load_steps(plan.job_id, spent_keys(plan)))


def spent_keys(plan: JobPlan) -> list[str]:
    """The step keys whose stored outputs ``spent_from`` counts."""
    step_keys = [k for s in STAGES for k in s.keys(plan)]
    return step_keys + [failed_key(k) for k in step_keys]


def spent_from(plan: JobPlan, raw: list[str | None]) -> Totals:
    """The totals of the outputs stored under ``spent_keys(plan)``."""
    steps = [s for s in STAGES for _ in s.keys(plan)]
    metrics: list[StepMetrics] = []
    for s, payload in zip(steps, raw[: len(steps)], strict=True):
        if payload is not None:
            output = s.output.model_validate_json(payload)
            if (m := getattr(output, "metrics", None)) is not None:
                metrics.append(m)
    metrics += [StepMetrics.model_validate_json(p) for p in raw[len(steps) :] if p]
    return compute_totals(metrics, (datetime.now(UTC) - plan.created_at).total_seconds())
