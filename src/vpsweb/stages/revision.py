"""Translator revision: the translator revises the chosen candidate after the review."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsweb.domain.models import EditorReview, Revision
from vpsweb.domain.parsing import extract_fields
from vpsweb.domain.prompts import neutralise
from vpsweb.errors import LLMError, ParseError
from vpsweb.stages.shared import (
    Prior,
    Recorder,
    StageContext,
    ask,
    common_variables,
    failure,
    required_terms,
    stage_prompt,
)
from vpsweb.stages.table import stage

if TYPE_CHECKING:  # pragma: no cover
    pass

STEP = "translator_revision"
DISPLAY = stage(STEP).display_name
TAGS = ("refined_translated_poem_title", "refined_translated_poet_name", "revised_translation")
OPTIONAL_TAGS = ("revised_translation_notes",)


def translator_revision(ctx: StageContext, prior: Prior, index: int | None = None) -> Revision:
    plan = ctx.plan
    chosen = prior.selected()
    review = prior.get("editor_review", EditorReview)
    call = plan.steps[STEP]
    variables = {
        # Labelled like the editor's copy: the suggestions cite [L2].
        **common_variables(plan, labelled=True),
        "translated_title": neutralise(chosen.translated_title),
        "translation": neutralise(chosen.translation),
        "translation_notes": neutralise(chosen.notes),
        "editor_suggestions": neutralise(review.suggestions),
    }
    rec = Recorder(call, ctx.model(call))
    prompt = stage_prompt(ctx, STEP, call, variables, appendix=required_terms(plan))
    try:
        fields = ask(ctx, rec, prompt, parse_answer, parse_attempts=plan.parse_retries + 1)
    except (LLMError, ParseError) as exc:
        raise failure(STEP, DISPLAY, rec, exc) from exc
    return Revision(
        translated_title=fields["refined_translated_poem_title"] or chosen.translated_title,
        translated_poet=fields["refined_translated_poet_name"] or chosen.translated_poet,
        translation=fields["revised_translation"],
        notes=fields["revised_translation_notes"],
        metrics=rec.done(),
        reasoning=rec.reasoning,
    )


def parse_answer(text: str) -> dict[str, str]:
    return extract_fields(
        text, ["revised_translation"], [*TAGS, *OPTIONAL_TAGS], what="translator revision"
    )


def check_answer(text: str, prompt: str) -> None:
    parse_answer(text)


def summary(revision: Revision) -> str:
    return f"{DISPLAY} completed"
