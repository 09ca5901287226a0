"""Evaluation: gates, then a judge asked in several orders picks the best candidate.

Candidates that fail the deterministic gates (vpsweb.domain.gates) are never shown to the
judge. The judge is asked ``plan.judge_orders`` times, each time with the eligible
candidates in another order, in parallel (the calls are independent, so K calls
cost no more wall time than one on free slots); the choice is the best mean score
over the orders (vpsweb.domain.selection). An order whose answer cannot be parsed is
retried, then left out; when no order can be used, a deterministic rule decides,
and the result carries a ``judge_unavailable`` warning: the job still succeeds (the
translation is real and paid for) but never passes a rule's pick off as judged.
``method`` records which happened. Translators' notes are not shown: they argue
for their own text. The judge numbers candidates by position (1..M, shuffled); its
rationale is renumbered to the candidates' own numbers before anyone reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsweb.domain import gates
from vpsweb.domain.job_warnings import JobWarning
from vpsweb.domain.models import (
    CandidateResult,
    CandidateScore,
    EvaluationResult,
    GateResult,
    Judgement,
    SelectionMethod,
)
from vpsweb.domain.parsing import extract_tag, parse_scores, parse_selected_index
from vpsweb.domain.prompts import neutralise
from vpsweb.domain.selection import (
    aggregate,
    agreement,
    choose,
    fallback_select,
    judge_orders,
    map_presented_id,
    renumber,
)
from vpsweb.errors import LLMError, ParseError, StageFailed
from vpsweb.stages import candidate
from vpsweb.stages.shared import (
    Prior,
    Recorder,
    StageContext,
    ask,
    combine,
    common_variables,
    glossary_misses,
    in_parallel,
    stage_prompt,
)
from vpsweb.stages.table import stage

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.domain.plan import JobPlan

STEP = "evaluation"
DISPLAY = stage(STEP).display_name


def _scores(raw: dict[int, dict[str, float]], order: list[int]) -> list[CandidateScore]:
    """Scores keyed by presented id, mapped back to candidate indexes."""
    return [
        CandidateScore(
            index=order[pid - 1], scores=vals, total=round(sum(vals.values()), 3) if vals else None
        )
        for pid, vals in sorted(raw.items())
        if 1 <= pid <= len(order) and vals
    ]


def check_answer(text: str, prompt: str) -> None:
    """A person's verdict must name one of the candidates the prompt shows."""
    shown = prompt.count('<candidate id="')
    try:
        map_presented_id(parse_selected_index(text), list(range(shown)))
    except ValueError as exc:
        raise ParseError(str(exc)) from None


def gate(
    plan: JobPlan, survivors: list[CandidateResult]
) -> tuple[list[GateResult], list[GateResult]]:
    """The candidates kept from the judge (gated), and those judged but flagged: a
    glossary miss gates a candidate in "strict" mode and flags it in "flag" mode."""
    req = plan.request
    strict = req.glossary is not None and req.glossary.mode == "strict"
    gated, flagged = [], []
    for c in survivors:
        reasons = gates.check(
            c.translation,
            source=req.poem,
            source_lang=req.source_lang,
            target_lang=req.target_lang,
            gates=plan.gates,
        )
        misses = glossary_misses(plan, c.translation, c.translated_title, c.translated_poet)
        if strict:
            reasons += misses
        elif misses:
            flagged.append(GateResult(index=c.index, reasons=misses))
        if reasons:
            gated.append(GateResult(index=c.index, reasons=reasons))
    return gated, flagged


def _judge_once(
    ctx: StageContext, order: list[int], by_index: dict[int, CandidateResult]
) -> tuple[Judgement, Recorder, int]:
    """One order's verdict, its usage, and how many answers it took."""
    plan = ctx.plan
    shown = [
        {
            "id": pos + 1,
            "title": neutralise(by_index[idx].translated_title),
            "translation": neutralise(by_index[idx].translation),
        }
        for pos, idx in enumerate(order)
    ]
    variables = {
        **common_variables(plan),
        "candidates": shown,
        "criteria": [c.model_dump() for c in plan.criteria],
    }
    call = plan.steps[STEP]
    rec = Recorder(call, ctx.model(call))
    answers: list[int] = []

    def parse(text: str) -> Judgement:
        answers.append(1)
        try:
            chosen = map_presented_id(parse_selected_index(text), order)
        except ValueError as exc:
            raise ParseError(str(exc)) from None
        return Judgement(
            order=order,
            selected_index=chosen,
            scores=_scores(parse_scores(text), order),
            rationale=renumber(extract_tag(text, "rationale") or "", order),
            analysis=renumber(extract_tag(text, "analysis") or "", order),
            reasoning=renumber(rec.reasoning, order),
        )

    prompt = stage_prompt(ctx, STEP, call, variables)
    try:
        verdict = ask(ctx, rec, prompt, parse, parse_attempts=plan.judge_retries + 1)
    except (ParseError, LLMError) as exc:
        verdict = Judgement(order=order, error=str(exc))
    return verdict, rec, len(answers)


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
    gated, flagged = gate(plan, survivors)
    barred = {g.index for g in gated}
    eligible = [c for c in survivors if c.index not in barred]
    if not eligible:
        causes = "; ".join(f"candidate {g.index}: {', '.join(g.reasons)}" for g in gated)
        raise StageFailed(STEP, DISPLAY, f"no candidate passed the checks before judging: {causes}")
    by_index = {c.index: c for c in eligible}
    orders = judge_orders(list(by_index), plan.judge_orders, seed=f"{plan.job_id}:evaluation")
    runs = in_parallel(lambda o: _judge_once(ctx, o, by_index), orders)
    verdicts = [v for v, _, _ in runs]
    metrics = combine([rec for _, rec, _ in runs])
    result = _decide(plan, eligible, verdicts, orders[0])
    method: SelectionMethod = result.method
    if method == "judge" and any(n > 1 for _, _, n in runs):
        method = "judge_retry"
    if len(eligible) == 1 and method != "fallback_line_count":
        method = "single_candidate"
    return result.model_copy(
        update={"method": method, "gated": gated, "flagged": flagged, "metrics": metrics}
    )


def _decide(
    plan: JobPlan, eligible: list[CandidateResult], verdicts: list[Judgement], first: list[int]
) -> EvaluationResult:
    usable = [v for v in verdicts if v.selected_index is not None]
    if not usable:
        errors = "; ".join(sorted({v.error or "no verdict" for v in verdicts}))
        chosen = fallback_select(eligible, plan.request.poem, tie_order=first).index
        rationale = (
            f"The judge's answers could not be used ({errors}); chose candidate #{chosen} "
            "by the fallback rule: line count closest to the source, ties in the job's "
            "shuffled order."
        )
        warning = JobWarning(
            kind="judge_unavailable",
            stage=DISPLAY,
            message=(
                f"the judge gave no verdict in any of {len(verdicts)} order(s) ({errors}); "
                f"candidate #{chosen} was picked by line count, not judged"
            ),
        )
        return EvaluationResult(
            warnings=[warning],
            selected_index=chosen,
            rationale=rationale,
            method="fallback_line_count",
            presented_order=first,
            judgements=verdicts,
            matches_top_aggregate=False,
        )
    scores = aggregate(usable)
    chosen, top = choose(usable, scores)
    single = usable[0].selected_index
    if len(verdicts) == 1 and single is not None:  # one order asked: its own choice
        totals = [s.total for s in scores if s.total is not None]
        chosen = single
        top = any(s.index == chosen and s.total == max(totals) for s in scores if totals)
    shown = next((v for v in usable if v.selected_index == chosen), usable[0])
    agree = agreement(usable, chosen)
    return EvaluationResult(
        selected_index=chosen,
        rationale=shown.rationale,
        analysis=shown.analysis,
        reasoning=shown.reasoning,
        scores=scores,
        method="judge",
        presented_order=shown.order,
        judgements=verdicts,
        agreement=agree,
        low_agreement=agree is not None and agree < plan.min_agreement,
        matches_top_aggregate=top,
    )


def summary(result: EvaluationResult) -> str:
    if not result.judged:
        return (
            f"selected candidate {result.selected_index} by line count: the judge gave no verdict"
        )
    text = f"selected candidate {result.selected_index} ({result.method})"
    if result.agreement is not None:
        text += f", orders agree {result.agreement:.0%}"
        if result.low_agreement:
            text += " (low agreement)"
    if result.gated:
        text += f", {len(result.gated)} gated"
    if result.flagged:
        text += f", {len(result.flagged)} flagged"
    return text
