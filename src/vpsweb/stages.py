"""The four stages as plain functions of their inputs and an LLM client.

No Celery, no Redis: the tasks in vpsweb.tasks adapt these to the queue. Every
stage records usage over *all* billed calls, including answers that failed to
parse, because the user paid for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vpsweb.config.schema import PromptFile
from vpsweb.languages import language_name
from vpsweb.llm.client import Completion, LLMClient
from vpsweb.llm.errors import LLMError
from vpsweb.models import (
    CandidateResult,
    CandidateScore,
    EditorReview,
    EvaluationResult,
    Revision,
    StepMetrics,
    StepName,
    utcnow,
)
from vpsweb.parsing import (
    ParseError,
    clean_answer,
    extract_fields,
    extract_tag,
    label_lines,
    parse_scores,
    parse_selected_index,
)
from vpsweb.plan import JobPlan, StepCall
from vpsweb.prompts import RenderedPrompt, dial_variables, render
from vpsweb.selection import fallback_select, map_presented_id, presentation_order

T = TypeVar("T")

CANDIDATE_TAGS = ("translated_poem_title", "translated_poet_name", "initial_translation")
REVISION_TAGS = (
    "refined_translated_poem_title",
    "refined_translated_poet_name",
    "revised_translation",
)


class StageFailed(Exception):
    """A stage could not produce its output; names the stage and the cause."""

    def __init__(self, step: StepName, cause: str, *, metrics: StepMetrics | None = None):
        self.step = step
        self.cause = cause
        self.metrics = metrics
        super().__init__(f"{step.display_name} failed: {cause}")


@dataclass
class StageContext:
    """What every stage needs: the plan, the prompt templates, the LLM, a cancel check."""

    plan: JobPlan
    prompts: dict[StepName, PromptFile]
    llm: LLMClient
    check: Callable[[], None] | None = None


@dataclass
class _Recorder:
    """Accumulates usage across attempts into one StepMetrics."""

    call: StepCall
    started: float = field(default_factory=time.monotonic)
    metrics: StepMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = StepMetrics(model=self.call.model, started_at=utcnow())

    def billed(self, completion: Completion) -> None:
        m = self.metrics
        m.usage = m.usage + completion.usage
        m.attempts += completion.attempts
        m.billed_calls += 1
        m.llm_latency_s += completion.latency_s
        if completion.sim_latency_ms is not None:
            m.reported_latency_s = (m.reported_latency_s or 0.0) + completion.sim_latency_ms / 1000

    def failed(self, exc: LLMError) -> None:
        self.metrics.attempts += exc.attempts

    def done(self) -> StepMetrics:
        self.metrics.duration_s = round(time.monotonic() - self.started, 4)
        self.metrics.llm_latency_s = round(self.metrics.llm_latency_s, 4)
        self.metrics.finished_at = utcnow()
        return self.metrics


def _ask(
    ctx: StageContext,
    rec: _Recorder,
    prompt: RenderedPrompt,
    parse: Callable[[str], T],
    *,
    parse_attempts: int,
) -> T:
    """Call, parse, and re-ask on a ParseError up to ``parse_attempts`` times in all."""
    last: ParseError | None = None
    for _ in range(parse_attempts):
        try:
            completion = ctx.llm.complete(rec.call, prompt.messages(), check=ctx.check)
        except LLMError as exc:
            rec.failed(exc)
            raise
        rec.billed(completion)
        try:
            return parse(completion.content)
        except ParseError as exc:
            last = exc
    assert last is not None
    raise last


def _common(plan: JobPlan, *, labelled: bool = False) -> dict[str, Any]:
    req = plan.request
    return {
        "original_poem": label_lines(req.poem) if labelled else req.poem.strip("\n"),
        "source_lang": language_name(req.source_lang),
        "target_lang": language_name(req.target_lang),
        "poem_title": req.title,
        "poet_name": req.author,
        **dial_variables(plan.strategy),
    }


def _prompt(ctx: StageContext, step: StepName, call: StepCall, variables: dict[str, Any]):
    return render(ctx.prompts[step].for_model(reasoning=call.model.reasoning), variables)


def translate_candidate(ctx: StageContext, index: int) -> CandidateResult:
    """One candidate. LLM and parse failures become a failed record, never an exception,
    so that one bad candidate cannot stop the others' evaluation."""
    plan = ctx.plan
    cand = plan.candidates[index]
    rec = _Recorder(cand.call)
    variables = {
        **_common(plan),
        "background_briefing_report": plan.request.background_briefing or "",
        "strategy_hint": cand.hint,
        "variant_name": cand.variant,
    }
    prompt = _prompt(ctx, StepName.INITIAL_TRANSLATION, cand.call, variables)

    def parse(text: str) -> dict[str, str]:
        return extract_fields(
            text,
            ["initial_translation"],
            [*CANDIDATE_TAGS, "initial_translation_notes"],
            what="initial translation",
        )

    try:
        fields = _ask(ctx, rec, prompt, parse, parse_attempts=plan.parse_retries + 1)
    except (LLMError, ParseError) as exc:
        return CandidateResult(
            index=index,
            variant=cand.variant,
            strategy_hint=cand.hint,
            status="failed",
            error=str(exc),
            metrics=rec.done(),
        )
    return CandidateResult(
        index=index,
        variant=cand.variant,
        strategy_hint=cand.hint,
        status="succeeded",
        translated_title=fields["translated_poem_title"],
        translated_poet=fields["translated_poet_name"],
        translation=fields["initial_translation"],
        notes=fields["initial_translation_notes"],
        metrics=rec.done(),
    )


def evaluate(ctx: StageContext, candidates: list[CandidateResult]) -> EvaluationResult:
    """Pick the best surviving candidate. The judge sees a shuffled order; an answer
    it cannot parse is retried, then a deterministic rule decides (recorded in method)."""
    plan = ctx.plan
    survivors = [c for c in candidates if c.ok]
    if not survivors:
        causes = "; ".join(f"candidate {c.index} ({c.variant}): {c.error}" for c in candidates)
        raise StageFailed(StepName.EVALUATION, f"no candidate succeeded: {causes}")
    by_index = {c.index: c for c in survivors}
    order = presentation_order(list(by_index), seed=f"{plan.job_id}:evaluation")
    shown = [
        {
            "id": i + 1,
            "title": by_index[idx].translated_title,
            "translation": by_index[idx].translation,
            "notes": by_index[idx].notes,
        }
        for i, idx in enumerate(order)
    ]
    variables = {
        **_common(plan),
        "candidates": shown,
        "criteria": [c.model_dump() for c in plan.criteria],
    }
    rec = _Recorder(plan.evaluation)
    prompt = _prompt(ctx, StepName.EVALUATION, plan.evaluation, variables)
    tries = {"n": 0}

    def parse(text: str) -> tuple[int, str, str, dict[int, dict[str, float]]]:
        tries["n"] += 1
        presented = parse_selected_index(text)
        try:
            chosen = map_presented_id(presented, order)
        except ValueError as exc:
            raise ParseError(str(exc)) from None
        rationale = extract_tag(text, "rationale") or ""
        analysis = extract_tag(text, "analysis") or ""
        return chosen, rationale, analysis, parse_scores(text)

    try:
        chosen, rationale, analysis, raw_scores = _ask(
            ctx, rec, prompt, parse, parse_attempts=plan.judge_retries + 1
        )
        method = (
            "single_candidate"
            if len(survivors) == 1
            else ("judge" if tries["n"] == 1 else "judge_retry")
        )
    except (ParseError, LLMError) as exc:
        chosen = fallback_select(survivors, plan.request.poem).index
        rationale = (
            f"The judge's answer could not be used ({exc}); chose candidate {chosen} "
            "by the fallback rule: line count closest to the source, lowest index on ties."
        )
        analysis, raw_scores, method = "", {}, "fallback_line_count"
    scores = [
        CandidateScore(
            index=order[pid - 1], scores=vals, total=round(sum(vals.values()), 3) if vals else None
        )
        for pid, vals in sorted(raw_scores.items())
        if 1 <= pid <= len(order)
    ]
    return EvaluationResult(
        selected_index=chosen,
        rationale=rationale,
        analysis=analysis,
        scores=scores,
        method=method,  # type: ignore[arg-type]
        presented_order=order,
        metrics=rec.done(),
    )


def _stage_failure(step: StepName, rec: _Recorder, exc: Exception) -> StageFailed:
    return StageFailed(step, str(exc), metrics=rec.done())


def editor_review(ctx: StageContext, chosen: CandidateResult) -> EditorReview:
    """The editor sees the source with [L1] labels; a tagless but non-empty answer is
    accepted as raw suggestions (editors' prose is still useful)."""
    plan = ctx.plan
    call = plan.editor_review
    variables = {
        **_common(plan, labelled=True),
        "translated_title": chosen.translated_title,
        "translation": chosen.translation,
        "translation_notes": chosen.notes,
    }
    rec = _Recorder(call)
    prompt = _prompt(ctx, StepName.EDITOR_REVIEW, call, variables)

    def parse(text: str) -> str:
        value = extract_tag(text, "editor_suggestions")
        if value:
            return value
        if value is None and (raw := clean_answer(text).strip()):
            return raw  # no tags at all: an editor's plain prose is still useful
        raise ParseError("editor review has no suggestions", missing=["editor_suggestions"])

    try:
        suggestions = _ask(ctx, rec, prompt, parse, parse_attempts=plan.parse_retries + 1)
    except (LLMError, ParseError) as exc:
        raise _stage_failure(StepName.EDITOR_REVIEW, rec, exc) from exc
    return EditorReview(suggestions=suggestions, metrics=rec.done())


def translator_revision(
    ctx: StageContext, chosen: CandidateResult, review: EditorReview
) -> Revision:
    plan = ctx.plan
    call = plan.translator_revision
    variables = {
        **_common(plan),
        "translated_title": chosen.translated_title,
        "translation": chosen.translation,
        "translation_notes": chosen.notes,
        "editor_suggestions": review.suggestions,
    }
    rec = _Recorder(call)
    prompt = _prompt(ctx, StepName.TRANSLATOR_REVISION, call, variables)

    def parse(text: str) -> dict[str, str]:
        return extract_fields(
            text,
            ["revised_translation"],
            [*REVISION_TAGS, "revised_translation_notes"],
            what="translator revision",
        )

    try:
        fields = _ask(ctx, rec, prompt, parse, parse_attempts=plan.parse_retries + 1)
    except (LLMError, ParseError) as exc:
        raise _stage_failure(StepName.TRANSLATOR_REVISION, rec, exc) from exc
    return Revision(
        translated_title=fields["refined_translated_poem_title"] or chosen.translated_title,
        translated_poet=fields["refined_translated_poet_name"] or chosen.translated_poet,
        translation=fields["revised_translation"],
        notes=fields["revised_translation_notes"],
        metrics=rec.done(),
    )
