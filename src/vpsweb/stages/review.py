"""Editor review: the editor reads the chosen candidate against the labelled source."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsweb.domain.models import EditorReview, EvaluationResult
from vpsweb.domain.parsing import clean_answer, extract_tag, require_answer
from vpsweb.domain.prompts import neutralise
from vpsweb.errors import LLMError, ParseError
from vpsweb.stages.shared import (
    Prior,
    Recorder,
    StageContext,
    ask,
    common_variables,
    failure,
    stage_prompt,
)
from vpsweb.stages.table import stage

if TYPE_CHECKING:  # pragma: no cover
    pass

STEP = "editor_review"
DISPLAY = stage(STEP).display_name


def parse_suggestions(text: str) -> str:
    """A tagless but non-empty answer is accepted as raw suggestions: an editor's plain
    prose is still useful. Empty tags are not, nor is an empty answer."""
    require_answer(text)
    value = extract_tag(text, "editor_suggestions")
    if value:
        return value
    if value is None and (raw := clean_answer(text).strip()):
        return raw
    raise ParseError("editor review has no suggestions", missing=["editor_suggestions"])


def check_answer(text: str, prompt: str) -> None:
    parse_suggestions(text)


def runner_ups(prior: Prior) -> list[dict[str, object]]:
    """The candidates not chosen but judged (not failed, not gated): a line of theirs
    may be better than the chosen one's, and it is already paid for."""
    ev = prior.get("evaluation", EvaluationResult)
    barred = {g.index for g in ev.gated}
    return [
        {"id": c.index, "translation": neutralise(c.translation)}
        for c in prior.candidates()
        if c.ok and c.index != ev.selected_index and c.index not in barred
    ]


def editor_review(ctx: StageContext, prior: Prior, index: int | None = None) -> EditorReview:
    plan = ctx.plan
    chosen = prior.selected()
    call = plan.steps[STEP]
    variables = {
        **common_variables(plan, labelled=True),
        "translated_title": neutralise(chosen.translated_title),
        "translation": neutralise(chosen.translation),
        "translation_notes": neutralise(chosen.notes),
        "runner_ups": runner_ups(prior),
    }
    rec = Recorder(call, ctx.model(call))
    prompt = stage_prompt(ctx, STEP, call, variables)
    try:
        suggestions = ask(
            ctx, rec, prompt, parse_suggestions, parse_attempts=plan.parse_retries + 1
        )
    except (LLMError, ParseError) as exc:
        raise failure(STEP, DISPLAY, rec, exc) from exc
    return EditorReview(suggestions=suggestions, metrics=rec.done(), reasoning=rec.reasoning)


def summary(review: EditorReview) -> str:
    return f"{DISPLAY} completed"
