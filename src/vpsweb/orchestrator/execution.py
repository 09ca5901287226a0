"""Worker-side execution of one job step: the glue between tasks, stages and the store.

``run_step`` is what every stage's Celery task does, minus Celery: load the job,
stop if it ended, reuse a stored output if this is a redelivery, run the stage
under a lease, store its output, and record progress. Deliveries are at least
once; billing is at most once per step: a second delivery of a running step
waits for its output, and takes over only when the first one's lease lapsed
(its worker died). ``finalize`` ends a job with one atomic write.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import BaseModel

from vpsweb.domain.job_warnings import warning_text
from vpsweb.domain.models import utcnow
from vpsweb.domain.progress import EventKind
from vpsweb.domain.result import assemble
from vpsweb.errors import Cancelled
from vpsweb.llm.client import LLMClient
from vpsweb.monitoring.usage import record_usage, summary_of_output
from vpsweb.orchestrator.job_run import (
    FINALIZE_BUDGET_S,
    Delivery,
    JobRun,
    Services,
    services,
)
from vpsweb.orchestrator.keeper import Claim
from vpsweb.orchestrator.lean import item_end, lean_step, one_by_one
from vpsweb.orchestrator.lifecycle import fail_job
from vpsweb.orchestrator.summaries import summary
from vpsweb.stages import runs
from vpsweb.stages.shared import Prior
from vpsweb.stages.table import FINALIZE_DISPLAY, STAGES, Stage, previous, stage_bounds
from vpsweb.storage import Event, JobStatus


def _produce(
    run: JobRun, s: Stage, index: int | None, llm: LLMClient | None, prior: Prior | None = None
) -> BaseModel:
    prior = prior if prior is not None else run.prior(s.needs)
    if not s.fan_out:
        return runs.run(s, run.context(llm), prior, index)
    assert index is not None
    try:
        return runs.run(s, run.context(llm, fan_out=True), prior, index)
    except Cancelled:
        raise
    except Exception as exc:
        # A bug or a broken template in one item must not lose the others.
        return runs.lost(s, run.plan, index, f"internal error: {type(exc).__name__}: {exc}")


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
) -> dict[str, Any]:
    run = JobRun(svc, job_id, read_status=svc.storage.steps is None)
    budget = run.plan.step_budget_s(s.name, index)
    kept = _kept_alive(svc, delivery, budget)
    try:
        return _step(run, s, index, budget)
    finally:
        if kept is not None:
            svc.keeper.drop(kept)


def _step(run: JobRun, s: Stage, index: int | None, budget: float) -> dict[str, Any]:
    job_id = run.job_id
    before = previous(s)
    viable = True  # a fan-out with no success failed: no "completed", nothing "started"
    if before is not None and before.fan_out:
        outputs = run.outputs(before)
        viable = any(getattr(o, "ok", True) for o in outputs)
        if viable:
            run.stage_event(before, started=False, message=summary(before, outputs))
    steps = run.svc.storage.steps
    if steps is not None and s.name not in run.plan.manual_steps:
        output, recorded = lean_step(
            run,
            steps,
            s,
            index,
            budget,
            viable=viable,
            produce=lambda prior: _produce(run, s, index, None, prior),
        )
    else:
        produce = partial(_produce, run, s, index)
        output, recorded = one_by_one(run, s, index, budget, viable=viable, produce=produce), False
    if s.fan_out:
        assert index is not None
        end = item_end(run.plan, s, index, output)
        if not recorded:
            run.progress.candidate_finished(
                job_id,
                index,
                ok=end.ok,
                n=end.n,
                end_percent=end.end_percent,
                stage=end.stage,
                ttl=run.ttl,
                details=end.details,
                late=end.late,
                quorum=end.quorum,
                grace=end.grace,
            )
        status = "late" if end.late else "succeeded" if end.ok else "failed"
        return {"job_id": job_id, "index": index, "status": status}
    if s is not STAGES[-1] and not recorded:  # the last stage's end comes with the result
        run.stage_event(s, started=False, message=summary(s, output), output=output)
    return {"job_id": job_id, "step": s.name}


def finalize(svc: Services, job_id: str, *, delivery: Delivery | None = None) -> dict[str, Any]:
    """Assemble and store the result, and end the job: one write, the first one stands."""
    run = JobRun(svc, job_id)
    kept = _kept_alive(svc, delivery, FINALIZE_BUDGET_S)
    try:
        plan = run.plan
        output = assemble(plan, {s.name: run.outputs(s) for s in STAGES}, utcnow())
        last = STAGES[-1]
        _, end = stage_bounds(plan.progress_weights, last.name)
        events = [
            Event(
                EventKind.STAGE_COMPLETED,
                end,
                {
                    "stage": last.display_name,
                    "status": "completed",
                    "model": plan.call(last.name).model,
                    "message": summary(last, getattr(output, last.result_field)),
                    "warning": warning_text(getattr(output, last.result_field)),
                },
            ),
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
            job_id, JobStatus.SUCCEEDED, run.ttl, events=events, result=output.model_dump_json()
        ):  # only the call that ended the job counts its usage
            record_usage(svc.storage, run.ttl, lambda: summary_of_output(output))
    finally:
        if kept is not None:
            svc.keeper.drop(kept)
    return {"job_id": job_id, "status": "succeeded"}


__all__ = ["Delivery", "JobRun", "Services", "fail_job", "finalize", "run_step", "services"]
