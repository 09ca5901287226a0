"""The stage table: every stage of the workflow, declared once.

The canvas, the Celery tasks and their routing, the progress bounds, the prompt
files and their variables, result assembly, step durations, the Markdown output
and the simulator's step recognition are all derived from ``STAGES``. Adding a
stage means: a module with its run function, a row here (and its field in
``TranslationOutput`` below), its prompt YAML, and its model per mode in
pipeline.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from vpsweb.job_warnings import JobWarning
from vpsweb.models import (
    CandidateResult,
    EditorReview,
    EvaluationResult,
    FinalTranslation,
    Revision,
    RevisionCheck,
    StepMetrics,
    StrategyDials,
    Totals,
    TranslationRequest,
    WorkflowMode,
)
from vpsweb.stages import candidate, evaluation, review, revision, revision_check

if TYPE_CHECKING:  # pragma: no cover - the plan module imports this table
    from vpsweb.plan import JobPlan
    from vpsweb.stages.base import Prior, StageContext

    RunFn = Callable[[StageContext, Prior, int | None], BaseModel]


@dataclass(frozen=True)
class Stage:
    """One row of the table.

    name: the step's name everywhere (config keys, prompt file, Redis step key).
    display_name: what progress displays show.
    task_name / queue: the Celery task and its default queue (``routing`` overrides).
    weight: its share of the job's progress bar (``progress_weights`` overrides).
    variables: template variables beyond the common ones (``prompts.COMMON_VARIABLES``).
    marker: a tag only this stage's prompt asks for; the simulator recognises it.
    needs: stages whose outputs ``run`` reads (through ``Prior``).
    output / run / result_field: the output model, the function that makes it, and
      the TranslationOutput field it lands in.
    fan_out: run once per candidate (the chord header); ``item`` prefixes the keys
      (candidate-0, ...) and ``lost`` makes the record of an item whose output is gone.
    summary / markdown: its line in the progress stream and its section in the output.
    check_answer: raises ParseError unless a person's answer to its prompt is usable
      (manual mode checks answers before accepting them).
    """

    name: str
    display_name: str
    task_name: str
    queue: str
    weight: float
    variables: tuple[str, ...]
    marker: str
    needs: tuple[str, ...]
    output: type[BaseModel]
    run: RunFn
    result_field: str
    summary: Callable[[Any], str]
    markdown: Callable[[TranslationOutput], list[str]]
    check_answer: Callable[[str, str], None]
    fan_out: bool = False
    item: str = ""
    lost: Callable[[JobPlan, int, str], BaseModel] | None = None

    @property
    def prompt(self) -> str:
        return self.name

    def key(self, index: int | None = None) -> str:
        """The step's key: task id suffix, Redis step key, manual answer key."""
        if self.fan_out:
            if index is None:
                raise ValueError(f"stage {self.name} runs per item: give an index")
            return f"{self.item}-{index}"
        return self.name

    def keys(self, plan: JobPlan) -> list[str]:
        if self.fan_out:
            return [self.key(i) for i in range(plan.parallel_count)]
        return [self.key()]


STAGES: tuple[Stage, ...] = (
    Stage(
        name="initial_translation",
        display_name=candidate.DISPLAY,
        task_name="vpsweb.candidate",
        queue="vpsweb.candidates",
        weight=25,
        variables=("background_briefing_report", "strategy_hint", "variant_name"),
        marker="initial_translation",
        needs=(),
        output=CandidateResult,
        run=candidate.translate_candidate,
        result_field="candidates",
        summary=candidate.summary,
        markdown=candidate.markdown,
        check_answer=candidate.check_answer,
        fan_out=True,
        item="candidate",
        lost=candidate.lost,
    ),
    Stage(
        name="evaluation",
        display_name=evaluation.DISPLAY,
        task_name="vpsweb.evaluate",
        queue="vpsweb.evaluation",
        weight=20,
        variables=("candidates", "criteria"),
        marker="selected_index",
        needs=("initial_translation",),
        output=EvaluationResult,
        run=evaluation.evaluate,
        result_field="evaluation",
        summary=evaluation.summary,
        markdown=evaluation.markdown,
        check_answer=evaluation.check_answer,
    ),
    Stage(
        name="editor_review",
        display_name=review.DISPLAY,
        task_name="vpsweb.editor_review",
        queue="vpsweb.review",
        weight=20,
        variables=("translated_title", "translation", "translation_notes", "runner_ups"),
        marker="editor_suggestions",
        needs=("initial_translation", "evaluation"),
        output=EditorReview,
        run=review.editor_review,
        result_field="editor_review",
        summary=review.summary,
        markdown=review.markdown,
        check_answer=review.check_answer,
    ),
    Stage(
        name="translator_revision",
        display_name=revision.DISPLAY,
        task_name="vpsweb.translator_revision",
        queue="vpsweb.review",
        weight=20,
        variables=("translated_title", "translation", "translation_notes", "editor_suggestions"),
        marker="revised_translation",
        needs=("initial_translation", "evaluation", "editor_review"),
        output=Revision,
        run=revision.translator_revision,
        result_field="revision",
        summary=revision.summary,
        markdown=revision.markdown,
        check_answer=revision.check_answer,
    ),
    Stage(
        name="revision_check",
        display_name=revision_check.DISPLAY,
        task_name="vpsweb.revision_check",
        queue="vpsweb.evaluation",
        weight=15,
        variables=("versions",),
        marker="preferred_version",
        needs=("initial_translation", "evaluation", "translator_revision"),
        output=RevisionCheck,
        run=revision_check.check_revision,
        result_field="revision_check",
        summary=revision_check.summary,
        markdown=revision_check.markdown,
        check_answer=revision_check.check_answer,
    ),
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
_BY_NAME = {s.name: s for s in STAGES}

# The canvas's last task, after every stage: assembles and stores the result.
FINALIZE_TASK = "vpsweb.finalize"
FINALIZE_QUEUE = "vpsweb.evaluation"
FINALIZE_DISPLAY = "Finalize"


def stage(name: str) -> Stage:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}") from None


def previous(s: Stage) -> Stage | None:
    i = STAGE_NAMES.index(s.name)
    return STAGES[i - 1] if i else None


def default_weights() -> dict[str, float]:
    return {s.name: s.weight for s in STAGES}


def default_routing() -> dict[str, str]:
    return {**{s.name: s.queue for s in STAGES}, "finalize": FINALIZE_QUEUE}


def stage_bounds(weights: dict[str, float], name: str) -> tuple[float, float]:
    """Percent of the whole job at the start and at the end of a stage."""
    total = sum(weights[s.name] for s in STAGES)
    done = 0.0
    for s in STAGES:
        start = done
        done += weights[s.name]
        if s.name == name:
            return round(100 * start / total, 2), round(100 * done / total, 2)
    raise KeyError(f"unknown stage {name!r}")


# --- the result ----------------------------------------------------------------------


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
    totals: Totals = Field(default_factory=Totals)
    step_durations: dict[str, float] = Field(default_factory=dict)
    created_at: datetime
    finished_at: datetime

    def stage_outputs(self, s: Stage) -> list[BaseModel]:
        value = getattr(self, s.result_field)
        return list(value) if s.fan_out else [value]

    def stage_warnings(self) -> list[JobWarning]:
        """Every stage's warnings, in table order."""
        return [
            w for s in STAGES for out in self.stage_outputs(s) for w in getattr(out, "warnings", [])
        ]

    def all_metrics(self) -> list[StepMetrics]:
        """Metrics of every step, in table order (failed candidates included)."""
        found: list[StepMetrics] = []
        for s in STAGES:
            for out in self.stage_outputs(s):
                metrics = getattr(out, "metrics", None)
                if metrics is not None:
                    found.append(metrics)
        return found
