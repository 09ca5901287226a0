"""A job's result: TranslationOutput, assembled from its stage outputs, and its totals.

Shared by the workers' finalize task and the in-process runner, so a job's result
is the same whichever way it ran.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from vpsweb.domain.job_warnings import JobWarning, output_warnings
from vpsweb.domain.models import (
    CandidateResult,
    EditorReview,
    EvaluationResult,
    FinalTranslation,
    ResultFlag,
    Revision,
    RevisionCheck,
    StepMetrics,
    StrategyDials,
    Totals,
    TranslationRequest,
    WorkflowMode,
)
from vpsweb.stages.table import STAGES, Stage

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.domain.plan import JobPlan


class TranslationOutput(BaseModel):
    """The whole story of a job, saved as JSON and Markdown.

    One field per stage (``Stage.result_field``), plus what the job as a whole
    knows; a unit test checks that every row's field is here with its output type.
    """

    model_config = ConfigDict(extra="forbid")

    job_id: str
    request: TranslationRequest
    workflow_mode: WorkflowMode
    parallel_count: int
    strategy: StrategyDials
    candidates: list[CandidateResult]
    evaluation: EvaluationResult
    selected_candidate: CandidateResult
    editor_review: EditorReview
    revision: Revision
    revision_check: RevisionCheck
    # What the job delivers: the revision if the check kept it, else the candidate.
    final: FinalTranslation
    manual_steps: list[str] = Field(default_factory=list)  # stages a person answered
    # Steps that fell back (a judge that never answered, a revision left unchecked):
    # the job still succeeded, its translation is real, but it says what it is not.
    warnings: list[JobWarning] = Field(default_factory=list)
    # Texts judged or delivered although they miss glossary terms (glossary mode "flag",
    # and a revision's misses in either mode): each candidate's and the revision's.
    flags: list[ResultFlag] = Field(default_factory=list)
    totals: Totals = Field(default_factory=Totals)
    step_durations: dict[str, float] = Field(default_factory=dict)
    created_at: datetime
    finished_at: datetime

    def stage_outputs(self, s: Stage) -> list[BaseModel]:
        value = getattr(self, s.result_field)
        return list(value) if s.fan_out else [value]

    def stage_warnings(self) -> list[JobWarning]:
        """Every stage's warnings (a fallback model's answer included), in table order."""
        return [
            w
            for s in STAGES
            for out in self.stage_outputs(s)
            for w in output_warnings(s.display_name, out)
        ]

    def result_flags(self) -> list[ResultFlag]:
        """Every flagged candidate's and the revision's findings, saying which one is the
        delivered translation."""
        final = self.final
        found = [
            ResultFlag(
                where=f"candidate #{g.index}",
                index=g.index,
                message=message,
                final=final.source == "candidate" and final.candidate_index == g.index,
            )
            for g in self.evaluation.flagged
            for message in g.reasons
        ]
        found += [
            ResultFlag(where="revision", index=-1, message=m, final=final.source == "revision")
            for m in self.revision_check.flags
        ]
        return found

    def all_metrics(self) -> list[StepMetrics]:
        """Metrics of every step, in table order (failed candidates included)."""
        found: list[StepMetrics] = []
        for s in STAGES:
            for out in self.stage_outputs(s):
                metrics = getattr(out, "metrics", None)
                if metrics is not None:
                    found.append(metrics)
        return found


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
    output.flags = output.result_flags()
    return output
