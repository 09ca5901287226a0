"""Initial translation: one candidate per variant, run N times in parallel (fan-out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsweb.domain.models import CandidateResult
from vpsweb.domain.parsing import extract_fields
from vpsweb.domain.prompts import neutralise
from vpsweb.errors import Late, LLMError, ParseError
from vpsweb.stages.shared import (
    Prior,
    Recorder,
    StageContext,
    ask,
    common_variables,
    described,
    required_terms,
    stage_prompt,
)
from vpsweb.stages.table import stage

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.domain.plan import JobPlan

STEP = "initial_translation"
DISPLAY = stage(STEP).display_name
TAGS = ("translated_poem_title", "translated_poet_name", "initial_translation")
OPTIONAL_TAGS = ("initial_translation_notes",)


def translate_candidate(ctx: StageContext, prior: Prior, index: int | None) -> CandidateResult:
    """One candidate. LLM and parse failures become a failed record, never an exception,
    so that one bad candidate cannot stop the others' evaluation."""
    assert index is not None, "a candidate needs its index"
    plan = ctx.plan
    cand = plan.candidates[index]
    rec = Recorder(cand.call, ctx.model(cand.call))
    variables = {
        **common_variables(plan),
        "background_briefing_report": neutralise(plan.request.background_briefing or ""),
        "strategy_hint": cand.hint,
        "variant_name": cand.variant,
    }
    prompt = stage_prompt(ctx, STEP, cand.call, variables, appendix=required_terms(plan))
    record = CandidateResult(
        index=index, variant=cand.variant, strategy_hint=cand.hint, status="failed"
    )
    try:
        fields = ask(ctx, rec, prompt, parse_answer, parse_attempts=plan.parse_retries + 1)
    except (LLMError, ParseError) as exc:
        return record.model_copy(update={"error": described(exc), "metrics": rec.done()})
    except Late as exc:
        # Stopped by the straggler policy: its in-flight call was abandoned (a provider
        # may still bill it; what was billed before is kept), and it is not a failure.
        metrics = rec.done()
        why = f"late: stopped after {metrics.duration_s:.1f}s ({exc})"
        return record.model_copy(update={"status": "late", "error": why, "metrics": metrics})
    return record.model_copy(
        update={
            "status": "succeeded",
            "translated_title": fields["translated_poem_title"],
            "translated_poet": fields["translated_poet_name"],
            "translation": fields["initial_translation"],
            "notes": fields["initial_translation_notes"],
            "metrics": rec.done(),
            "reasoning": rec.reasoning,
        }
    )


def parse_answer(text: str) -> dict[str, str]:
    return extract_fields(
        text, ["initial_translation"], [*TAGS, *OPTIONAL_TAGS], what="initial translation"
    )


def check_answer(text: str, prompt: str) -> None:
    parse_answer(text)


def lost(plan: JobPlan, index: int, error: str) -> CandidateResult:
    """The record of a candidate whose output is missing when the next stage runs."""
    c = plan.candidates[index]
    return CandidateResult(
        index=index, variant=c.variant, strategy_hint=c.hint, status="failed", error=error
    )


def causes(candidates: list[CandidateResult]) -> str:
    """Why candidates failed, each cause once: a missing key is one sentence, not N."""
    by_cause: dict[str, list[str]] = {}
    for c in candidates:
        if c.status == "failed":
            by_cause.setdefault(c.error or "no cause recorded", []).append(
                f"{c.index} ({c.variant})"
            )
    return "; ".join(
        f"candidate{'s' if len(who) > 1 else ''} {', '.join(who)}: {cause}"
        for cause, who in by_cause.items()
    )


def summary(candidates: list[CandidateResult]) -> str:
    ok = sum(c.ok for c in candidates)
    late = sum(c.status == "late" for c in candidates)
    text = f"{ok} of {len(candidates)} candidates succeeded"
    return f"{text}, {late} late" if late else text
