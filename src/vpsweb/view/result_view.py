"""A job's result as every display shows it: the CLI's report and the web page.

Built from a TranslationOutput; it decides what each candidate's status is (a
candidate that succeeded but failed a check before judging is "gated", with the
check's reasons) and says the judge's verdict, the review, the revision and the
totals as the displays draw them. Pure: no I/O.
"""

from __future__ import annotations

from itertools import zip_longest

from pydantic import BaseModel, Field, computed_field

from vpsweb.domain.job_warnings import JobWarning
from vpsweb.domain.models import CandidateResult, EvaluationResult, ResultFlag
from vpsweb.domain.result import TranslationOutput
from vpsweb.files.output import format_cost
from vpsweb.view.marks import LATE_CAUSE, CandidateStatus, Marked


class ResultCandidate(Marked):
    index: int
    variant: str
    status: CandidateStatus
    chosen: bool = False
    translation: str = ""
    scores: str = ""  # "fidelity 8, fluency 7 (total 15)"; "" when the judge gave none

    @classmethod
    def of(cls, c: CandidateResult, ev: EvaluationResult) -> ResultCandidate:
        gated = ev.gate_reasons(c.index)
        status: CandidateStatus = "gated" if gated and c.ok else c.status
        cause = {
            "gated": "; ".join(gated),
            "late": LATE_CAUSE,
            "failed": c.error or "",
        }.get(status, "")
        score = next((s for s in ev.scores if s.index == c.index), None)
        text = ""
        if score is not None and (score.scores or score.total is not None):
            text = ", ".join(f"{k} {v:g}" for k, v in score.scores.items())
            text += f" (total {score.total:g})" if score.total is not None else ""
        return cls(
            index=c.index,
            variant=c.variant,
            status=status,
            cause=cause,
            flag="; ".join(ev.flag_reasons(c.index)),
            chosen=c.index == ev.selected_index,
            translation=c.translation if c.ok else "",
            scores=text,
        )


class JudgeView(BaseModel):
    selected_index: int
    method: str
    judged: bool
    orders: int  # how many orders the judge was asked in
    agreement: float | None = None
    low_agreement: bool = False
    rationale: str = ""
    shuffled: list[tuple[int, int]] = Field(default_factory=list)  # (position, index)
    reasoning: str = ""

    @classmethod
    def of(cls, ev: EvaluationResult) -> JudgeView:
        shown = ev.judged and len(ev.presented_order) > 1
        return cls(
            selected_index=ev.selected_index,
            method=ev.method,
            judged=ev.judged,
            orders=len(ev.judgements),
            agreement=ev.agreement,
            low_agreement=ev.low_agreement,
            rationale=ev.rationale.strip(),
            shuffled=list(enumerate(ev.presented_order, 1)) if shown else [],
            reasoning=ev.reasoning,
        )


class ResultView(BaseModel):
    job_id: str
    warnings: list[JobWarning] = Field(default_factory=list)
    flags: list[ResultFlag] = Field(default_factory=list)  # glossary misses, final one first
    chosen: ResultCandidate
    candidates: list[ResultCandidate]
    judge: JudgeView
    reasoning: list[tuple[str, str]] = Field(default_factory=list)  # (who, their thinking)
    suggestions: str
    check_decision: str
    check_reason: str
    revision_not_kept: str = ""  # the revision's text when the check kept the candidate
    final_source: str  # "revision" or "candidate"
    final_which: str  # "the revision" or "candidate #2"
    final_title: str = ""
    final_translation: str
    lines: list[tuple[str, str]] = Field(default_factory=list)  # source | final, side by side
    llm_calls: int
    total_tokens: int
    prompt_tokens: int
    completion_tokens: int
    cost: str
    duration_s: float
    manual_steps: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> int:
        return sum(c.status == "failed" for c in self.candidates)

    @classmethod
    def of(cls, output: TranslationOutput) -> ResultView:
        ev, final, t = output.evaluation, output.final, output.totals
        candidates = [ResultCandidate.of(c, ev) for c in output.candidates]
        source = output.request.poem.strip("\n").splitlines()
        kept = final.source == "revision"
        return cls(
            job_id=output.job_id,
            warnings=list(output.warnings),
            flags=sorted(output.flags, key=lambda f: not f.final),
            chosen=next(c for c in candidates if c.chosen),
            candidates=candidates,
            judge=JudgeView.of(ev),
            reasoning=_reasoning(output),
            suggestions=output.editor_review.suggestions.strip(),
            check_decision=output.revision_check.decision,
            check_reason=output.revision_check.reason,
            revision_not_kept="" if kept else output.revision.translation.strip(),
            final_source=final.source,
            final_which="the revision" if kept else f"candidate #{final.candidate_index}",
            final_title=final.translated_title,
            final_translation=final.translation.strip(),
            lines=list(
                zip_longest(source, final.translation.strip("\n").splitlines(), fillvalue="")
            ),
            llm_calls=t.llm_calls,
            total_tokens=t.total_tokens,
            prompt_tokens=t.prompt_tokens,
            completion_tokens=t.completion_tokens,
            cost=format_cost(t.cost),
            duration_s=t.duration_s,
            manual_steps=list(output.manual_steps),
        )


def _reasoning(output: TranslationOutput) -> list[tuple[str, str]]:
    """Reasoning models' own thinking, by who thought it (those that gave any)."""
    found = [(f"candidate #{c.index}", c.reasoning) for c in output.candidates]
    found += [
        ("judge", output.evaluation.reasoning),
        ("editor", output.editor_review.reasoning),
        ("revision", output.revision.reasoning),
    ]
    return [(who, text) for who, text in found if text]
