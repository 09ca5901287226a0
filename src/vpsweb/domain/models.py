"""Pydantic models at every boundary: step results and the job's output (the request
is ``vpsweb.domain.request``'s, re-exported here as the names the code has always used).

Everything here crosses the broker or the result store as JSON, so every model must
round-trip through ``model_dump_json`` / ``model_validate_json`` without loss.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vpsweb.domain.job_warnings import JobWarning
from vpsweb.domain.request import (
    DEFAULT_MAX_PARALLEL_COUNT,
    MAX_POEM_CHARS,
    WAIT_ALL,
    AdaptationLevel,
    AdditionsPolicy,
    LongText,
    OneLine,
    PlainText,
    Priority,
    RepetitionPolicy,
    StragglerPolicy,
    StrategyDials,
    StrategyOverrides,
    TranslationRequest,
    WorkflowMode,
)

__all__ = [
    "DEFAULT_MAX_PARALLEL_COUNT",
    "MAX_POEM_CHARS",
    "WAIT_ALL",
    "AdaptationLevel",
    "AdditionsPolicy",
    "LongText",
    "OneLine",
    "PlainText",
    "Priority",
    "RepetitionPolicy",
    "StragglerPolicy",
    "StrategyDials",
    "StrategyOverrides",
    "TranslationRequest",
    "WorkflowMode",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ModelInfo(_Model):
    """Which model answered a step; no secrets (the key env var name at most)."""

    model: str  # key in models.yaml
    provider: str
    api_model: str
    reasoning: bool = False
    temperature: float | None = None


class Usage(_Model):
    """Tokens and cost of one or more billed calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    currency: str = "USD"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        if self.cost and other.cost and self.currency != other.currency:
            raise ValueError(f"cannot add costs in {self.currency} and {other.currency}")
        currency = self.currency if self.cost or not other.cost else other.currency
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=round(self.cost + other.cost, 10),
            currency=currency,
        )


class StepMetrics(_Model):
    """Usage summed over every billed attempt of a step (parse retries included)."""

    model: ModelInfo
    usage: Usage = Field(default_factory=Usage)
    attempts: int = 0  # HTTP calls made, billed or not
    billed_calls: int = 0
    duration_s: float = 0.0
    llm_latency_s: float = 0.0  # time spent inside successful LLM calls
    # Latency the offline simulator says it applied (None for real providers):
    # the benchmarks' measured critical path.
    reported_latency_s: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # The step's planned model (key in models.yaml) when a fallback answered instead
    # (``model``), and why: the planned model's error, in one line. None: no fallback.
    fallback_from: str | None = None
    fallback_reason: str | None = None


# "late": stopped by the job's straggler policy once enough others had finished; not
# a failure (nothing went wrong), but not a candidate the judge sees either.
CandidateStatus = Literal["succeeded", "failed", "late"]


class CandidateResult(_Model):
    """One candidate translation; failed candidates are kept with their error."""

    index: int
    variant: str
    strategy_hint: str = ""
    status: CandidateStatus
    translated_title: str = ""
    translated_poet: str = ""
    translation: str = ""
    notes: str = ""
    error: str | None = None
    metrics: StepMetrics | None = None
    reasoning: str = ""  # a reasoning model's own thinking (domain.reasoning), if any

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


SelectionMethod = Literal[
    "judge",  # the judge's answer parsed on the first try (every order)
    "judge_retry",  # parsed after a retry in at least one order
    "single_candidate",  # one eligible candidate: a validation pass, no choice to make
    "fallback_line_count",  # no order could be used: deterministic rule
]


class CandidateScore(_Model):
    index: int
    scores: dict[str, float] = Field(default_factory=dict)
    total: float | None = None


class GateResult(_Model):
    """Why a candidate (or the revision) was kept from the judge: deterministic checks
    that catch what a judge may like but a reader never would."""

    index: int  # candidate index; -1 for the revision
    reasons: list[str]


class Judgement(_Model):
    """One call of the judge: the order it saw (candidate indexes by position), its own
    choice and scores mapped back to candidate indexes, or why it could not be used."""

    order: list[int]
    selected_index: int | None = None
    scores: list[CandidateScore] = Field(default_factory=list)
    rationale: str = ""  # candidate references renumbered as the reader's (selection.renumber)
    analysis: str = ""
    error: str | None = None
    reasoning: str = ""


class EvaluationResult(_Model):
    selected_index: int
    rationale: str
    analysis: str = ""
    # The aggregate: per criterion, the mean over the orders that parsed.
    scores: list[CandidateScore] = Field(default_factory=list)
    method: SelectionMethod
    presented_order: list[int] = Field(default_factory=list)  # the first order
    judgements: list[Judgement] = Field(default_factory=list)
    # Share of parsed orders whose own choice is the final one (None: fewer than two).
    agreement: float | None = None
    low_agreement: bool = False
    matches_top_aggregate: bool = True
    gated: list[GateResult] = Field(default_factory=list)
    # Candidates judged as usual but flagged: they miss glossary terms (mode "flag").
    flagged: list[GateResult] = Field(default_factory=list)
    metrics: StepMetrics | None = None
    reasoning: str = ""  # the reasoning behind the verdict shown (``rationale``)
    warnings: list[JobWarning] = Field(default_factory=list)

    @property
    def judged(self) -> bool:
        """Whether a judge's verdict chose (else a rule did: see ``warnings``)."""
        return self.method != "fallback_line_count"

    def gate_reasons(self, index: int) -> list[str]:
        return next((g.reasons for g in self.gated if g.index == index), [])

    def flag_reasons(self, index: int) -> list[str]:
        return next((g.reasons for g in self.flagged if g.index == index), [])


class EditorReview(_Model):
    suggestions: str
    metrics: StepMetrics | None = None
    reasoning: str = ""


class Revision(_Model):
    translated_title: str = ""
    translated_poet: str = ""
    translation: str
    notes: str = ""
    metrics: StepMetrics | None = None
    reasoning: str = ""


class FinalTranslation(_Model):
    """The translation the job delivers, and which text it is."""

    translated_title: str = ""
    translated_poet: str = ""
    translation: str
    source: Literal["revision", "candidate"]
    candidate_index: int


# "revision_unchecked": no order preferred the candidate, but some gave no verdict (an
# error is not a verdict): the candidate is kept, with a warning (stages.revision_check).
RevisionDecision = Literal["revision_kept", "revision_rejected", "revision_unchecked"]


class RevisionCheck(_Model):
    """The guard on the revision: it replaces the selected candidate only if a judge
    prefers it in both orders. ``judgements`` holds each order's preferred text."""

    decision: RevisionDecision
    reason: str
    # Per order: which text was shown first, and which the judge preferred
    # ("revision" / "candidate"; None when the order could not be used).
    orders: list[list[str]] = Field(default_factory=list)
    preferred: list[str | None] = Field(default_factory=list)
    gate_reasons: list[str] = Field(default_factory=list)
    # The revision's glossary misses (in "strict" mode they are gate reasons too).
    flags: list[str] = Field(default_factory=list)
    metrics: StepMetrics | None = None
    warnings: list[JobWarning] = Field(default_factory=list)

    @property
    def kept(self) -> bool:
        return self.decision == "revision_kept"


class ResultFlag(_Model):
    """A finding on a text the job judged or delivered all the same: a candidate or the
    revision that misses a required glossary term (``message`` names it). ``final``:
    the delivered translation is that text."""

    kind: Literal["glossary"] = "glossary"
    where: str  # "candidate #2" or "revision"
    index: int  # the candidate's index; -1 for the revision
    message: str
    final: bool = False


class Totals(_Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: dict[str, float] = Field(default_factory=dict)  # currency -> amount
    llm_calls: int = 0
    duration_s: float = 0.0


def utcnow() -> datetime:
    return datetime.now(UTC)
