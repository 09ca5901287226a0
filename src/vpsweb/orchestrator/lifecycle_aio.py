"""``vpsweb.orchestrator.lifecycle`` for asyncio clients: cancel, fail a stalled job, what it spent.

The decisions and payloads are lifecycle's and usage's own (``stall_cause``,
``cancel_events``, ``spent_keys``/``spent_from``, ``ending_keys``/``ending_summary``);
only the reads and writes here are awaited, on the async storage seam.
"""

from __future__ import annotations

import logging
import time

from vpsweb.domain.models import Totals
from vpsweb.domain.plan import JobPlan
from vpsweb.errors import one_line
from vpsweb.monitoring.usage import counters, ending_keys, ending_summary
from vpsweb.orchestrator.lifecycle import (
    cancel_events,
    failure_events,
    overdue,
    spent_from,
    spent_keys,
    stall_cause,
)
from vpsweb.storage.async_base import AsyncStorage
from vpsweb.storage.base import JobStatus

log = logging.getLogger("vpsweb")


async def spent(storage: AsyncStorage, plan: JobPlan) -> Totals:
    return spent_from(plan, await storage.jobs.load_steps(plan.job_id, spent_keys(plan)))


async def record_ending(
    storage: AsyncStorage, plan: JobPlan, status: JobStatus, stage_name: str | None = None
) -> bool:
    """As ``usage.record_ending`` (never raises)."""
    try:
        raw = await storage.jobs.load_steps(plan.job_id, ending_keys(plan))
        summary = ending_summary(plan, status, await spent(storage, plan), stage_name, raw)
        await storage.usage.record(summary.model_dump_json(), counters(summary), plan.retention_s)
        return True
    except Exception as exc:  # bookkeeping must never fail the job
        log.warning("usage of a job was not recorded: %s: %s", type(exc).__name__, exc)
        return False


async def cancel_job(
    storage: AsyncStorage, job_id: str, plan: JobPlan, reason: str = "cancelled by user"
) -> bool:
    events = cancel_events(reason)
    ended = await storage.jobs.end(job_id, JobStatus.CANCELLED, plan.retention_s, events=events)
    if ended:  # only the call that ended the job counts its usage
        await record_ending(storage, plan, JobStatus.CANCELLED)
    return ended


async def stall_job(storage: AsyncStorage, job_id: str, now: float | None = None) -> bool:
    """As ``lifecycle.stall_job``: fail a job past its deadline, naming its stage."""
    now = time.time() if now is None else now
    status, deadline = await storage.jobs.status(job_id), await storage.jobs.deadline(job_id)
    if not overdue(status, deadline, now) or deadline is None:
        return False
    plan = await storage.jobs.plan(job_id)
    if plan is None:
        return False
    stage, cause = stall_cause(await storage.progress.snapshot(job_id), deadline)
    cause = one_line(cause)
    ended = await storage.jobs.end(
        job_id,
        JobStatus.FAILED,
        plan.retention_s,
        events=failure_events(stage, cause),
        error=cause,
        error_stage=stage,
    )
    if ended:
        await record_ending(storage, plan, JobStatus.FAILED, stage)
    return ended
