"""Assembling a job's TranslationOutput from its stage outputs, and its totals.

Shared by the workers' finalize task and the in-process runner, so a job's result
is the same whichever way it ran.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vpsweb.models import (
    CandidateResult,
    EvaluationResult,
    FinalTranslation,
    Revision,
    RevisionCheck,
    StepMetrics,
    Totals,
)
from vpsweb.plan import JobPlan
from vpsweb.stages.table import STAGES, TranslationOutput


def compute_totals(metrics: list[StepMetrics], duration_s: float) -> Totals:
    """Totals over every call of a job: all candidates (failed ones too) and evaluation."""
    totals = Totals(duration_s=round(duration_s, 3))
    for m in metrics:
        totals.prompt_tokens += m.usage.prompt_tokens
        totals.completion_tokens += m.usage.completion_tokens
        totals.llm_calls += m.attempts
        if m.usage.cost:
            cur = m.usage.currency
            totals.cost[cur] = round(totals.cost.get(cur, 0.0) + m.usage.cost, 10)
    totals.total_tokens = totals.prompt_tokens + totals.completion_tokens
    return totals


def step_durations(output: TranslationOutput) -> dict[str, float]:
    """Wall time per stage: a fan-out stage takes as long as its slowest item."""
    durations: dict[str, float] = {}
    for s in STAGES:
        times = [
            m.duration_s
            for out in output.stage_outputs(s)
            if (m := getattr(out, "metrics", None)) is not None
        ]
        if times:
            durations[s.name] = round(max(times), 4)
    return durations


def final_translation(
    chosen: CandidateResult, revision: Revision, check: RevisionCheck
) -> FinalTranslation:
    if check.kept:
        return FinalTranslation(
            translated_title=revision.translated_title,
            translated_poet=revision.translated_poet,
            translation=revision.translation,
            source="revision",
            candidate_index=chosen.index,
        )
    return FinalTranslation(
        translated_title=chosen.translated_title,
        translated_poet=chosen.translated_poet,
        translation=chosen.translation,
        source="candidate",
        candidate_index=chosen.index,
    )


def assemble(plan: JobPlan, outputs: dict[str, Any], finished_at: datetime) -> TranslationOutput:
    """``outputs`` maps every stage name to its output (a list for a fan-out stage)."""
    candidates: list[CandidateResult] = outputs["initial_translation"]
    evaluation: EvaluationResult = outputs["evaluation"]
    output = TranslationOutput(
        job_id=plan.job_id,
        request=plan.request,
        workflow_mode=plan.workflow_mode,
        parallel_count=plan.parallel_count,
        strategy=plan.strategy,
        selected_candidate=candidates[evaluation.selected_index],
        final=final_translation(
            candidates[evaluation.selected_index],
            outputs["translator_revision"],
            outputs["revision_check"],
        ),
        created_at=plan.created_at,
        finished_at=finished_at,
        manual_steps=plan.manual_steps,
        **{s.result_field: outputs[s.name] for s in STAGES},
    )
    # Totals and durations are derived from every step's metrics, so they come last.
    duration = (finished_at - plan.created_at).total_seconds()
    output.totals = compute_totals(output.all_metrics(), duration)
    output.step_durations = step_durations(output)
    output.warnings = output.stage_warnings()
    return output
