"""Evaluation: a judge picks the best surviving candidate (the chord's callback).

The judge sees the candidates in a shuffled order; an answer it cannot parse is
retried, then a deterministic rule decides. ``method`` records which happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsweb.errors import LLMError, ParseError, StageFailed
from vpsweb.models import CandidateResult, CandidateScore, EvaluationResult, SelectionMethod
from vpsweb.parsing import extract_tag, parse_scores, parse_selected_index
from vpsweb.prompts import neutralise
from vpsweb.selection import fallback_select, map_presented_id, presentation_order
from vpsweb.stages import candidate
from vpsweb.stages.base import Prior, Recorder, StageContext, ask, common_variables, stage_prompt

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.stages.table import TranslationOutput

STEP = "evaluation"
DISPLAY = "Translation Evaluation"

Verdict = tuple[int, str, str, dict[int, dict[str, float]]]


def _parser(order: list[int], tries: list[int]):
    def parse(text: str) -> Verdict:
        tries.append(1)
        try:
            chosen = map_presented_id(parse_selected_index(text), order)
        except ValueError as exc:
            raise ParseError(str(exc)) from None
        rationale = extract_tag(text, "rationale") or ""
        analysis = extract_tag(text, "analysis") or ""
        return chosen, rationale, analysis, parse_scores(text)

    return parse


def _scores(raw: dict[int, dict[str, float]], order: list[int]) -> list[CandidateScore]:
    """Scores keyed by presented id, mapped back to candidate indexes."""
    return [
        CandidateScore(
            index=order[pid - 1], scores=vals, total=round(sum(vals.values()), 3) if vals else None
        )
        for pid, vals in sorted(raw.items())
        if 1 <= pid <= len(order)
    ]


def evaluate(ctx: StageContext, prior: Prior, index: int | None = None) -> EvaluationResult:
    plan = ctx.plan
    candidates = prior.candidates()
    survivors = [c for c in candidates if c.ok]
    if not survivors:
        # The candidates failed, not the judge: blame their stage.
        raise StageFailed(
            candidate.STEP,
            candidate.DISPLAY,
            f"no candidate succeeded: {candidate.causes(candidates)}",
        )
    by_index = {c.index: c for c in survivors}
    order = presentation_order(list(by_index), seed=f"{plan.job_id}:evaluation")
    shown = [
        {
            "id": i + 1,
            "title": neutralise(by_index[idx].translated_title),
            "translation": neutralise(by_index[idx].translation),
            "notes": neutralise(by_index[idx].notes),
        }
        for i, idx in enumerate(order)
    ]
    variables = {
        **common_variables(plan),
        "candidates": shown,
        "criteria": [c.model_dump() for c in plan.criteria],
    }
    call = plan.steps[STEP]
    rec = Recorder(call, ctx.model(call))
    prompt = stage_prompt(ctx, STEP, call, variables)
    tries: list[int] = []
    method: SelectionMethod
    try:
        chosen, rationale, analysis, raw = ask(
            ctx, rec, prompt, _parser(order, tries), parse_attempts=plan.judge_retries + 1
        )
        method = "judge" if len(tries) == 1 else "judge_retry"
        if len(survivors) == 1:
            method = "single_candidate"
    except (ParseError, LLMError) as exc:
        chosen, rationale = _fallback(survivors, plan.request.poem, exc)
        analysis, raw, method = "", {}, "fallback_line_count"
    return EvaluationResult(
        selected_index=chosen,
        rationale=rationale,
        analysis=analysis,
        scores=_scores(raw, order),
        method=method,
        presented_order=order,
        metrics=rec.done(),
    )


def _fallback(survivors: list[CandidateResult], poem: str, exc: Exception) -> tuple[int, str]:
    """The judge failed or answered nonsense twice: the candidates are paid for, so a
    deterministic rule picks rather than failing the job."""
    chosen = fallback_select(survivors, poem).index
    rationale = (
        f"The judge's answer could not be used ({exc}); chose candidate {chosen} "
        "by the fallback rule: line count closest to the source, lowest index on ties."
    )
    return chosen, rationale


def summary(result: EvaluationResult) -> str:
    return f"selected candidate {result.selected_index} ({result.method})"


def markdown(output: TranslationOutput) -> list[str]:
    ev = output.evaluation
    mapping = ", ".join(f"{pid} = candidate {idx}" for pid, idx in enumerate(ev.presented_order, 1))
    lines = [
        "## Evaluation",
        "",
        f"Selected candidate {ev.selected_index} (method: {ev.method}). The judge saw the "
        f"candidates shuffled, numbered {mapping}; its rationale uses those numbers.",
        "",
        ev.rationale,
        "",
    ]
    if ev.scores:
        lines += ["| candidate | scores | total |", "|---|---|---|"]
        for s in ev.scores:
            detail = ", ".join(f"{k} {v:g}" for k, v in s.scores.items())
            lines.append(f"| {s.index} | {detail} | {s.total if s.total is not None else ''} |")
        lines.append("")
    return lines
