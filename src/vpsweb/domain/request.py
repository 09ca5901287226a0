"""What a user submits: the request, its strategy dials, straggler policy, priority
and glossary.

Validated before anything is enqueued; it crosses the broker inside the job's plan,
so every model round-trips through JSON without loss.
"""

from __future__ import annotations

import math
import re
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

from vpsweb.domain.glossary import Glossary, Texts
from vpsweb.domain.glossary import block as glossary_block
from vpsweb.domain.languages import normalize_language
from vpsweb.domain.plain_text import LongText, OneLine, PlainText

DEFAULT_MAX_PARALLEL_COUNT = 8
MAX_POEM_CHARS = 50_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class WorkflowMode(StrEnum):
    """Which model family runs each step (see config/pipeline.yaml ``modes``)."""

    HYBRID = "hybrid"
    REASONING = "reasoning"
    NON_REASONING = "non_reasoning"


MAX_IDEMPOTENCY_KEY = 200
_KEY = re.compile(r"^[\x21-\x7e]+$")


def _key(value: str) -> str:
    """An idempotency key: the submitter's own token (a UUID, a hash, a row id), compared
    as is, so nothing invisible or ambiguous in it."""
    if not _KEY.match(value):
        raise ValueError(
            "must be printable ASCII without spaces (letters, digits and - _ . : / and the like)"
        )
    return value


IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_IDEMPOTENCY_KEY), AfterValidator(_key)
]

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


class Priority(StrEnum):
    """Who waits first when a provider's quota is short: a person at a page or a
    terminal (interactive) before a collection (batch), which shares what is left."""

    INTERACTIVE = "interactive"
    BATCH = "batch"


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
    # None: interactive for a single job, batch for ``submit_many`` (see Priority).
    priority: Priority | None = None
    # The most the job may spend, in its models' currency: refused at submission when
    # the estimate is above it, and no new call is made once the spend reaches it.
    max_cost: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # A submission retried with the same key (after a timeout, a dropped connection, a
    # form posted twice) returns the job the first one made, within the jobs' retention,
    # instead of making another; a key whose job expired is free again.
    idempotency_key: IdempotencyKey | None = None
    # Required translations of names and terms (vpsweb.domain.glossary): rendered into
    # the translation and revision prompts, and checked in every candidate and the
    # revision (``mode``: flag the misses, or gate such candidates before judging).
    glossary: Glossary | None = None

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

    def glossary_texts(self) -> Texts:
        """Where the glossary's terms are looked for: the poem, its title, its poet."""
        return Texts(poem=self.poem, title=self.title, poet=self.author)

    def required_terms(self) -> str:
        """The "Required terms" block of its translation and revision prompts ("" for
        none: no glossary, or none of its terms occurs)."""
        return glossary_block(self.glossary, self.glossary_texts())

    @model_validator(mode="after")
    def _distinct_languages(self) -> TranslationRequest:
        if self.source_lang == self.target_lang:
            raise ValueError(
                f"source_lang and target_lang are both {self.source_lang!r}; "
                "choose a different target language"
            )
        return self
