"""The shape of config/models.yaml and config/pipeline.yaml.

Cross-references (a step naming an unknown model, a model naming an unknown
provider) are checked here too, so that one load tells every mistake at once.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vpsweb.domain.models import StragglerPolicy, StrategyDials, WorkflowMode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- models.yaml -------------------------------------------------------------


class Limits(_Strict):
    """A provider's (or a model's) quota, shared by every worker of the cluster. Any
    key may be left out; with none, the allowance adapts to the provider's 429s."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)


class Provider(_Strict):
    """An OpenAI-compatible endpoint. Keys come only from the worker's environment."""

    base_url: str = Field(pattern=r"^https?://")
    api_key_env: str | None = None  # None: the endpoint needs no key (Ollama, simulator)
    base_url_env: str | None = None  # env var that may override base_url at run time
    limits: Limits | None = None


class Price(_Strict):
    input_per_1k: float = Field(ge=0)
    output_per_1k: float = Field(ge=0)
    currency: str = Field(min_length=3, max_length=8)


class ModelEntry(_Strict):
    provider: str
    name: str = Field(min_length=1, description="the model name the API expects")
    reasoning: bool = False
    # The API ignores temperature (deepseek-reasoner): none is sent, none is recorded,
    # so a variant's or judge's temperature is not mistaken for a difference.
    ignores_sampling: bool = False
    price: Price
    # Prompt + answer tokens the model accepts; jobs that cannot fit are refused.
    context_window: int = Field(default=32_768, ge=1024)
    limits: Limits | None = None  # the model's own quota, within its provider's


class ModelsConfig(_Strict):
    providers: dict[str, Provider]
    models: dict[str, ModelEntry]
    simulator_model: str = Field(
        default="simulator", description="model key used for every step when offline"
    )

    @model_validator(mode="after")
    def _references(self) -> Self:
        problems = []
        for key, m in self.models.items():
            if m.provider not in self.providers:
                problems.append(
                    f"models.{key}.provider: unknown provider {m.provider!r}; "
                    f"allowed: {', '.join(sorted(self.providers))}"
                )
        if self.simulator_model not in self.models:
            problems.append(
                f"simulator_model: unknown model {self.simulator_model!r}; "
                f"allowed: {', '.join(sorted(self.models))}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


# --- pipeline.yaml ------------------------------------------------------------


class StepSettings(_Strict):
    model: str
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=4096, ge=16, le=200_000)
    timeout_s: float = Field(default=180.0, gt=0, le=3600)
    retries: int = Field(default=3, ge=0, le=10, description="transient-error retries")
    stop: list[str] = Field(default_factory=list)
    # Model keys (models.yaml) tried in order when the step's model fails it after its
    # retries (an error from its provider, a missing key, a quota wait too long).
    fallback: list[str] = Field(default_factory=list, max_length=4)


class ModeSettings(_Strict):
    """A workflow mode: the model of every stage (keys checked against the stage table)."""

    parallel_count: int | None = Field(default=None, ge=1)
    straggler: StragglerPolicy | None = None  # None: the pipeline's ``straggler``
    steps: dict[str, StepSettings]


class Variant(_Strict):
    """A candidate strategy; candidate i uses variant i mod len(variants)."""

    name: str = Field(pattern=r"^[a-z0-9_-]+$")
    hint: str = Field(min_length=1)
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)


class VariantRepeat(_Strict):
    """What changes when a variant is used again (N above the number of variants):
    a stated change to the hint and a temperature step, so that no two candidates are
    the same prompt at the same settings."""

    hint: str = Field(min_length=1)
    temperature_step: float = Field(default=0.1, ge=0, le=1)


class Criterion(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str


class ParallelSettings(_Strict):
    default: int = Field(default=3, ge=1)
    max: int = Field(default=8, ge=1, le=64)


class EvaluationSettings(_Strict):
    criteria: list[Criterion] = Field(min_length=1)
    judge_retries: int = Field(default=1, ge=0, le=3)
    # Judge calls per evaluation, each with the candidates in another order (1: one call).
    orders: int = Field(default=2, ge=1, le=8)
    # Agreement across orders below this is flagged in the result.
    min_agreement: float = Field(default=0.75, ge=0, le=1)
    # Judge calls comparing the selected candidate with its revision (0: keep the
    # revision unchecked; 2: both orders, the revision must win both).
    revision_check_orders: int = Field(default=2, ge=0, le=4)


class GateSettings(_Strict):
    """Deterministic checks before the judge (see vpsweb.domain.gates for each one's why)."""

    enabled: bool = True
    copy_ngram: int = Field(default=4, ge=2, le=12)
    max_copy_overlap: float = Field(default=0.5, gt=0, le=1)
    min_script_share: float = Field(default=0.6, ge=0, le=1)
    line_ratio: tuple[float, float] = (0.5, 2.0)
    length_ratio: tuple[float, float] = (0.35, 2.5)
    # Letters (a CJK character counts 3) per source line a translation may always use,
    # whatever the ratio says: for a poem of a line or two the ratio alone is noise.
    line_allowance: int = Field(default=50, ge=0, le=1000)

    @model_validator(mode="after")
    def _bands(self) -> Self:
        for name in ("line_ratio", "length_ratio"):
            lo, hi = getattr(self, name)
            if not 0 < lo < 1 < hi:
                raise ValueError(f"{name}: need 0 < low < 1 < high, got [{lo}, {hi}]")
        return self


class PipelineConfig(_Strict):
    parallel_count: ParallelSettings = Field(default_factory=ParallelSettings)
    modes: dict[WorkflowMode, ModeSettings]
    variants: list[Variant] = Field(min_length=1)
    variant_repeat: VariantRepeat = Field(
        default_factory=lambda: VariantRepeat(
            hint="This is another take on the same strategy: make different word choices."
        )
    )
    evaluation: EvaluationSettings
    gates: GateSettings = Field(default_factory=GateSettings)
    # When the candidate stage stops waiting for stragglers (per mode: modes.*.straggler).
    straggler: StragglerPolicy = Field(default_factory=StragglerPolicy)
    strategy_defaults: StrategyDials = Field(default_factory=StrategyDials)
    parse_retries: int = Field(default=1, ge=0, le=3, description="re-asks on unparseable answers")
    retention_s: int = Field(default=7 * 24 * 3600, ge=60)
    # How long a job may wait in a queue before its next step starts; with the plan's
    # worst-case step times it sets the job's deadline (after it, the job is stalled).
    queue_allowance_s: int = Field(default=900, ge=1, le=7 * 24 * 3600)
    # Share of the progress bar per stage, and queue per stage (plus "finalize").
    # Both default to the stage table; keys are checked against it by the loader.
    progress_weights: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    routing: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        missing = [m.value for m in WorkflowMode if m not in self.modes]
        if missing:
            problems.append(f"modes: missing {', '.join(missing)}")
        if self.parallel_count.default > self.parallel_count.max:
            problems.append(
                f"parallel_count.default: {self.parallel_count.default} is above "
                f"parallel_count.max {self.parallel_count.max}"
            )
        for mode, settings in self.modes.items():
            n = settings.parallel_count
            if n is not None and n > self.parallel_count.max:
                problems.append(
                    f"modes.{mode.value}.parallel_count: {n} is above "
                    f"parallel_count.max {self.parallel_count.max}"
                )
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            problems.append(f"variants: names must be unique, got {names}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def default_parallel_count(self, mode: WorkflowMode) -> int:
        return self.modes[mode].parallel_count or self.parallel_count.default

    def straggler_for(self, mode: WorkflowMode) -> StragglerPolicy:
        return self.modes[mode].straggler or self.straggler

    def variant_for(self, index: int) -> Variant:
        return self.variants[index % len(self.variants)]
