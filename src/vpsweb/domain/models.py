"""Pydantic models at every boundary: the request, step results and the job's output.

Everything here crosses the broker or the result store as JSON, so every model must
round-trip through ``model_dump_json`` / ``model_validate_json`` without loss.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vpsweb.domain.job_warnings import JobWarning
from vpsweb.domain.languages import normalize_language

DEFAULT_MAX_PARALLEL_COUNT = 8
MAX_POEM_CHARS = 50_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class WorkflowMode(StrEnum):
    """Which model family runs each step (see config/pipeline.yaml ``modes``)."""

    HYBRID = "hybrid"
    REASONING = "reasoning"
    NON_REASONING = "non_reasoning"


# C0 and C1 control characters and DEL; newlines and tabs are text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _plain_text(value: str) -> str:
    """Free text (a poem, a briefing, examples): lines and tabs, no control characters
    (a NUL or an escape sequence is never part of a poem, and models mishandle them)."""
    if found := _CONTROL.search(value):
        raise ValueError(
            f"contains a control character ({found.group()!r} at position {found.start()}); "
            "paste plain text"
        )
    return value


def _one_line(value: str) -> str:
    """A title, a name, a dial: one line of plain text, and no tags, since it is quoted
    in the prompts beside the protocol's own tags."""
    _plain_text(value)
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    if "<" in value or ">" in value:
        raise ValueError("must not contain '<' or '>'")
    return value.strip()


PlainText = Annotated[str, AfterValidator(_plain_text)]
OneLine = Annotated[str, AfterValidator(_one_line)]
# A briefing or examples: long, but bounded (each goes into every candidate's prompt).
LongText = Annotated[str, StringConstraints(max_length=20_000), AfterValidator(_plain_text)]

AdaptationLevel = Literal["foreignizing", "balanced", "domesticating"]
RepetitionPolicy = Literal["strict", "adaptive"]
AdditionsPolicy = Literal["forbid", "allow_with_alt"]


class StrategyDials(_Model):
    """The translator's strategy; every dial is rendered into the prompts."""

    adaptation_level: AdaptationLevel = "balanced"
    repetition_policy: RepetitionPolicy = "strict"
    additions_policy: AdditionsPolicy = "forbid"
    prosody_target: OneLine = Field(default="", max_length=2000)
    few_shots: LongText | None = None


class StrategyOverrides(_Model):
    """Per-job overrides; ``None`` keeps the configured default."""

    adaptation_level: AdaptationLevel | None = None
    repetition_policy: RepetitionPolicy | None = None
    additions_policy: AdditionsPolicy | None = None
    prosody_target: OneLine | None = Field(default=None, max_length=2000)
    few_shots: LongText | None = None

    def apply_to(self, defaults: StrategyDials) -> StrategyDials:
        changes = {k: v for k, v in self.model_dump().items() if v is not None}
        return defaults.model_copy(update=changes)


class StragglerPolicy(_Model):
    """When the candidate stage stops waiting for its slowest candidates.

    ``wait_all``: evaluation starts when every candidate has ended (the behaviour
    before policies existed). ``quorum``: once ``ceil(quorum x N)`` candidates have
    succeeded, the others get ``grace`` x the median duration of those that
    succeeded, counted from that moment; whoever is still running then is stopped
    (its call abandoned) and recorded as ``late``. LLM latencies are long-tailed, so
    the last of N candidates is much slower than the typical one, and waiting for it
    makes N cost time; a quorum keeps most of the choice at about the time of one.
    A plain string "wait_all" or "quorum" is accepted (the other fields default).
    """

    policy: Literal["wait_all", "quorum"] = "quorum"
    quorum: float = Field(default=0.75, gt=0, le=1)
    grace: float = Field(default=0.1, ge=0, le=10)

    @model_validator(mode="before")
    @classmethod
    def _named(cls, value: object) -> object:
        return {"policy": value} if isinstance(value, str) else value

    def quorum_count(self, n: int) -> int | None:
        """Successes after which the rest are on the clock; None: wait for all."""
        if self.policy == "wait_all":
            return None
        need = max(1, math.ceil(self.quorum * n - 1e-9))
        return need if need < n else None


WAIT_ALL = StragglerPolicy(policy="wait_all")


class TranslationRequest(_Model):
    """What a user submits. Validated before anything is enqueued.

    ``parallel_count`` is checked against the configured maximum, passed as the
    validation context key ``max_parallel_count`` (default 8).
    """

    poem: PlainText = Field(min_length=1, max_length=MAX_POEM_CHARS)
    source_lang: str
    target_lang: str
    title: OneLine = Field(default="", max_length=500)
    author: OneLine = Field(default="", max_length=500)
    workflow_mode: WorkflowMode = WorkflowMode.HYBRID
    parallel_count: StrictInt | None = None  # strict: true/"3" are not counts
    strategy: StrategyOverrides = Field(default_factory=StrategyOverrides)
    background_briefing: LongText | None = None
    # None: the mode's policy from config/pipeline.yaml (straggler, modes.*.straggler).
    straggler: StragglerPolicy | None = None

    @field_validator("poem")
    @classmethod
    def _poem_not_blank(cls, v: str) -> str:
        # Spaces, tabs, zero-width and other invisible characters do not make a poem.
        if not any(ch.isprintable() and not ch.isspace() for ch in v):
            raise ValueError("poem has no visible text; paste the poem text")
        return v

    @field_validator("source_lang")
    @classmethod
    def _source(cls, v: str) -> str:
        return normalize_language(v, role="source")

    @field_validator("target_lang")
    @classmethod
    def _target(cls, v: str) -> str:
        return normalize_language(v, role="target")

    @field_validator("parallel_count")
    @classmethod
    def _parallel_count(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is None:
            return v
        ctx = info.context or {}
        maximum = int(ctx.get("max_parallel_count", DEFAULT_MAX_PARALLEL_COUNT))
        if not 1 <= v <= maximum:
            raise ValueError(f"parallel_count must be between 1 and {maximum}, got {v}")
        return v

    @model_validator(mode="after")
    def _distinct_languages(self) -> TranslationRequest:
        if self.source_lang == self.target_lang:
            raise ValueError(
                f"source_lang and target_lang are both {self.source_lang!r}; "
                "choose a different target language"
            )
        return self


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
    metrics: StepMetrics | None = None
    reasoning: str = ""  # the reasoning behind the verdict shown (``rationale``)
    warnings: list[JobWarning] = Field(default_factory=list)

    @property
    def judged(self) -> bool:
        """Whether a judge's verdict chose (else a rule did: see ``warnings``)."""
        return self.method != "fallback_line_count"

    def gate_reasons(self, index: int) -> list[str]:
        return next((g.reasons for g in self.gated if g.index == index), [])


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
    metrics: StepMetrics | None = None
    warnings: list[JobWarning] = Field(default_factory=list)

    @property
    def kept(self) -> bool:
        return self.decision == "revision_kept"


class Totals(_Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: dict[str, float] = Field(default_factory=dict)  # currency -> amount
    llm_calls: int = 0
    duration_s: float = 0.0


def utcnow() -> datetime:
    return datetime.now(UTC)
