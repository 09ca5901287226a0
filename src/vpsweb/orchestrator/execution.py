"""Worker-side execution of one job step: the glue between tasks, stages and the store.

``run_step`` is what every stage's Celery task does, minus Celery: load the job,
say that the fan-out before the step ended, and run the step's one path
(``orchestrator.step.StepRun``: a stored output is reused, a running one awaited,
else the step runs under a lease and its output is stored, once). Deliveries are
at least once; billing is at most once per step. ``finalize`` ends a job with one
atomic write.
"""

from __future__ import annotations

from typing import Any

from vpsweb.domain.models import utcnow
from vpsweb.domain.progress import EventKind
from vpsweb.domain.result import assemble
from vpsweb.monitoring.usage import record_usage, summary_of_output
from vpsweb.orchestrator.answer_sources import answer_source
from vpsweb.orchestrator.job import JobRun
from vpsweb.orchestrator.keeper import Claim
from vpsweb.orchestrator.lifecycle import fail_job
from vpsweb.orchestrator.services import Delivery, Services, services
from vpsweb.orchestrator.step import StepRun
from vpsweb.orchestrator.summaries import summary
from vpsweb.stages.table import FINALIZE_DISPLAY, STAGES, Stage, previous
from vpsweb.storage import Event, JobStatus

FINALIZE_BUDGET_S = 120.0  # finalize makes no LLM call: a short keep-alive suffices


def _kept_alive(svc: Services, delivery: Delivery | None, for_s: float) -> Claim | None:
    if delivery is None:
        return None
    return svc.keeper.keep(delivery.renew, for_s=for_s, what="broker message")


def run_step(
    svc: Services,
    s: Stage,
    job_id: str,
    index: int | None = None,
    *,
    delivery: Delivery | None = None,
    may_park: bool = False,
) -> dict[str, Any]:
    job = JobRun(svc.storage, job_id, read_status=False)  # the step's first batch reads it
    budget = job.plan.step_slot_s(s.name, index)
    kept = _kept_alive(svc, delivery, budget)
    try:
        source = answer_source(job, s, s.key(index), svc.llm, slot_s=budget, may_park=may_park)
        viable = _after_fan_out(job, s)
        step = StepRun(svc, job, s, index, source=source, budget_s=budget, viable=viable)
        output = step.run()
    finally:
        if kept is not None:
            svc.keeper.drop(kept)
    if s.fan_out:
        assert index is not None
        end = job.candidate_end(s, index, output)
        status = "late" if end.late else "succeeded" if end.ok else "failed"
        return {"job_id": job_id, "index": index, "status": status}
    return {"job_id": job_id, "step": s.name}


def _after_fan_out(job: JobRun, s: Stage) -> bool:
    """After a fan-out stage, say it ended (once); False if it had no success (then
    nothing is "completed", and this step sends no "started")."""
    before = previous(s)
    if before is None or not before.fan_out:
        return True
    outputs = job.outputs(before)
    viable = any(getattr(o, "ok", True) for o in outputs)
    if viable:
        job.stage_event(before, started=False, message=summary(before, outputs))
    return viable


def finalize(svc: Services, job_id: str, *, delivery: Delivery | None = None) -> dict[str, Any]:
    """Assemble and store the result, and end the job: one write, the first one stands."""
    job = JobRun(svc.storage, job_id)
    kept = _kept_alive(svc, delivery, FINALIZE_BUDGET_S)
    try:
        plan = job.plan
        output = assemble(plan, {s.name: job.outputs(s) for s in STAGES}, utcnow())
        last = STAGES[-1]
        ended = getattr(output, last.result_field)
        events = [
            # The last stage's end, as every stage's is said (its warning and flags too).
            job.event_of(last, started=False, message=summary(last, ended), output=ended),
            Event(
                EventKind.JOB_FINISHED,
                100,
                {
                    "status": "succeeded",
                    "stage": FINALIZE_DISPLAY,
                    "message": "translation finished",
                },
            ),
        ]
        if svc.storage.jobs.end(
            job_id, JobStatus.SUCCEEDED, job.ttl, events=events, result=output.model_dump_json()
        ):  # only the call that ended the job counts its usage
            record_usage(svc.storage, job.ttl, lambda: summary_of_output(output))
    finally:
        if kept is not None:
            svc.keeper.drop(kept)
    return {"job_id": job_id, "status": "succeeded"}


__all__ = [
    "Delivery",
    "JobRun",
    "Services",
    "fail_job",
    "finalize",
    "run_step",
    "services",
]
