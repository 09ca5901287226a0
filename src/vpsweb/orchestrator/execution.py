"""Worker-side execution of one job step: the glue between tasks, stages and Redis.

Each ``run_*`` function is what a Celery task does, minus Celery: load the job,
stop if it was cancelled, reuse a stored output if this is a redelivery, run the
stage, store its output, and record progress.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel

from vpsweb.config import load_config
from vpsweb.llm.client import LLMClient, OpenAICompatibleClient
from vpsweb.llm.errors import Cancelled
from vpsweb.models import (
    CandidateResult,
    EditorReview,
    EvaluationResult,
    Revision,
    StepName,
    TranslationOutput,
    compute_totals,
    utcnow,
)
from vpsweb.orchestrator import keys
from vpsweb.orchestrator.progress import FINALIZE_STAGE, ProgressRecorder
from vpsweb.orchestrator.store import JobStatus, JobStore
from vpsweb.plan import JobPlan
from vpsweb.stages import (
    StageContext,
    editor_review,
    evaluate,
    translate_candidate,
    translator_revision,
)

M = TypeVar("M", bound=BaseModel)

_llm_lock = threading.Lock()
_llm: LLMClient | None = None


class JobGone(Exception):
    """The job is unknown or expired; its tasks have nothing to do."""


@lru_cache(maxsize=4)
def services(redis_url: str) -> tuple[JobStore, ProgressRecorder]:
    """One Redis connection pool per worker process and URL, shared by its threads."""
    store = JobStore.from_url(redis_url)
    return store, ProgressRecorder(store.redis)


def default_llm() -> LLMClient:
    global _llm
    with _llm_lock:
        if _llm is None:
            _llm = OpenAICompatibleClient()
        return _llm


class JobRun:
    """One task's view of its job."""

    def __init__(self, redis_url: str, job_id: str, llm: LLMClient | None = None) -> None:
        self.store, self.progress = services(redis_url)
        status = self.store.status(job_id)
        plan = self.store.plan(job_id) if status is not None else None
        if status is None or plan is None:
            raise JobGone(f"job {job_id} is unknown or has expired")
        if status is JobStatus.CANCELLED:
            raise Cancelled(job_id)
        self.job_id = job_id
        self.plan: JobPlan = plan
        self.ttl = plan.retention_s
        self.llm = llm or default_llm()

    def check(self) -> None:
        """Called before every LLM call: a cancelled job spends nothing more."""
        if self.store.status(self.job_id) is JobStatus.CANCELLED:
            raise Cancelled(self.job_id)

    def context(self) -> StageContext:
        return StageContext(
            plan=self.plan, prompts=load_config().prompts, llm=self.llm, check=self.check
        )

    def once(self, name: str, model: type[M], produce: Callable[[], M]) -> tuple[M, bool]:
        """The stored output if a previous delivery finished it, else produce and store.

        Returns (output, fresh) where fresh is False for a reused output.
        """
        stored = self.store.load_step(self.job_id, name)
        if stored is not None:
            return model.model_validate_json(stored), False
        output = produce()
        kept = self.store.save_step(self.job_id, name, output.model_dump_json(), self.ttl)
        return model.model_validate_json(kept), True

    def load(self, name: str, model: type[M]) -> M:
        raw = self.store.load_step(self.job_id, name)
        if raw is None:
            raise RuntimeError(f"job {self.job_id}: output of {name} is missing")
        return model.model_validate_json(raw)

    def started(self, step: StepName, model: str) -> None:
        self.store.mark_running(self.job_id, self.ttl)
        self.progress.stage_started(
            self.job_id, step, self.plan.progress_weights, self.ttl, model=model
        )

    def completed(self, step: StepName, model: str, message: str = "") -> None:
        self.progress.stage_completed(
            self.job_id, step, self.plan.progress_weights, self.ttl, model=model, message=message
        )

    def candidates(self) -> list[CandidateResult]:
        out = []
        for i in range(self.plan.parallel_count):
            raw = self.store.load_step(self.job_id, keys.candidate_step(i))
            if raw is None:
                c = self.plan.candidates[i]
                out.append(
                    CandidateResult(
                        index=i,
                        variant=c.variant,
                        strategy_hint=c.hint,
                        status="failed",
                        error="candidate output was lost",
                    )
                )
            else:
                out.append(CandidateResult.model_validate_json(raw))
        return out

    def selected(self) -> CandidateResult:
        evaluation = self.load("evaluation", EvaluationResult)
        return self.load(keys.candidate_step(evaluation.selected_index), CandidateResult)


def run_candidate(redis_url: str, job_id: str, index: int) -> dict[str, Any]:
    run = JobRun(redis_url, job_id)
    call = run.plan.candidates[index].call
    run.started(StepName.INITIAL_TRANSLATION, call.model.model)

    def produce() -> CandidateResult:
        try:
            return translate_candidate(run.context(), index)
        except Cancelled:
            raise
        except Exception as exc:  # a bug or a broken template: still only this candidate
            c = run.plan.candidates[index]
            return CandidateResult(
                index=index,
                variant=c.variant,
                strategy_hint=c.hint,
                status="failed",
                error=f"internal error: {type(exc).__name__}: {exc}",
            )

    result, _ = run.once(keys.candidate_step(index), CandidateResult, produce)
    # Counted in Redis once per index, even if this task is delivered twice.
    run.progress.candidate_finished(
        job_id,
        index,
        ok=result.ok,
        n=run.plan.parallel_count,
        weights=run.plan.progress_weights,
        ttl=run.ttl,
    )
    return {"job_id": job_id, "index": index, "status": result.status}


def run_evaluation(redis_url: str, job_id: str) -> dict[str, Any]:
    run = JobRun(redis_url, job_id)
    candidates = run.candidates()
    ok = sum(c.ok for c in candidates)
    run.completed(
        StepName.INITIAL_TRANSLATION,
        run.plan.candidates[0].call.model.model,
        f"{ok} of {len(candidates)} candidates succeeded",
    )
    model = run.plan.evaluation.model.model
    run.started(StepName.EVALUATION, model)
    result, _ = run.once(
        "evaluation", EvaluationResult, lambda: evaluate(run.context(), candidates)
    )
    run.completed(
        StepName.EVALUATION,
        model,
        f"selected candidate {result.selected_index} ({result.method})",
    )
    return {"job_id": job_id, "selected_index": result.selected_index}


def run_editor_review(redis_url: str, job_id: str) -> dict[str, Any]:
    run = JobRun(redis_url, job_id)
    model = run.plan.editor_review.model.model
    run.started(StepName.EDITOR_REVIEW, model)
    chosen = run.selected()
    run.once("editor_review", EditorReview, lambda: editor_review(run.context(), chosen))
    run.completed(StepName.EDITOR_REVIEW, model)
    return {"job_id": job_id}


def run_translator_revision(redis_url: str, job_id: str) -> dict[str, Any]:
    run = JobRun(redis_url, job_id)
    model = run.plan.translator_revision.model.model
    run.started(StepName.TRANSLATOR_REVISION, model)
    chosen = run.selected()
    review = run.load("editor_review", EditorReview)
    run.once(
        "translator_revision",
        Revision,
        lambda: translator_revision(run.context(), chosen, review),
    )
    # Completion of the last stage is announced by the terminal event (100 %).
    return {"job_id": job_id}


def run_finalize(redis_url: str, job_id: str) -> dict[str, Any]:
    run = JobRun(redis_url, job_id)
    plan = run.plan
    candidates = run.candidates()
    evaluation = run.load("evaluation", EvaluationResult)
    review = run.load("editor_review", EditorReview)
    revision = run.load("translator_revision", Revision)
    finished = utcnow()
    output = TranslationOutput(
        job_id=job_id,
        request=plan.request,
        workflow_mode=plan.workflow_mode,
        parallel_count=plan.parallel_count,
        strategy=plan.strategy,
        candidates=candidates,
        evaluation=evaluation,
        selected_candidate=candidates[evaluation.selected_index],
        editor_review=review,
        revision=revision,
        created_at=plan.created_at,
        finished_at=finished,
    )
    # Totals are derived from every step's metrics, so they are filled in last.
    output.totals = compute_totals(
        output.all_metrics(), (finished - plan.created_at).total_seconds()
    )
    output.step_durations = _step_durations(output)
    run.store.save_result(output, run.ttl)
    if run.store.transition(job_id, JobStatus.SUCCEEDED, run.ttl):
        run.progress.stage_completed(
            job_id,
            StepName.TRANSLATOR_REVISION,
            plan.progress_weights,
            run.ttl,
            model=plan.translator_revision.model.model,
        )
        run.progress.finished(
            job_id, "succeeded", run.ttl, stage=FINALIZE_STAGE, message="translation finished"
        )
    return {"job_id": job_id, "status": "succeeded"}


def _step_durations(output: TranslationOutput) -> dict[str, float]:
    cand = [c.metrics.duration_s for c in output.candidates if c.metrics]
    durations = {StepName.INITIAL_TRANSLATION.value: round(max(cand, default=0.0), 4)}
    for step, part in (
        (StepName.EVALUATION, output.evaluation),
        (StepName.EDITOR_REVIEW, output.editor_review),
        (StepName.TRANSLATOR_REVISION, output.revision),
    ):
        if part.metrics:
            durations[step.value] = part.metrics.duration_s
    return durations


def fail_job(redis_url: str, job_id: str, stage: str, cause: str) -> None:
    """Mark the job failed (unless it already ended) and close its event stream."""
    store, progress = services(redis_url)
    record = store.get(job_id)
    if record is None:
        return
    ttl = record.plan.retention_s
    if store.transition(job_id, JobStatus.FAILED, ttl, error=cause, error_stage=stage):
        progress.emit(
            job_id,
            event="stage_failed",
            percent=0,
            ttl=ttl,
            stage=stage,
            status="failed",
            error=cause,
            message=f"{stage} failed",
        )
        progress.finished(
            job_id,
            "failed",
            ttl,
            stage=stage,
            error=cause,
            message=f"job failed in {stage}: {cause}",
        )
