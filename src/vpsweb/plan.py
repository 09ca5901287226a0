"""A job's plan: the validated request resolved against the config at submission.

The plan fixes, once, which model, temperature and variant every step uses, so
that every worker runs the job the user submitted even if worker configs drift.
It names the env var of each API key, never the key itself.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vpsweb.config import AppConfig
from vpsweb.config.schema import Criterion, Price, ProgressWeights, Routing, StepSettings
from vpsweb.models import (
    ModelInfo,
    StepName,
    StrategyDials,
    TranslationRequest,
    Usage,
    WorkflowMode,
    utcnow,
)

OFFLINE_ENV = "VPSWEB_OFFLINE"


class RequestInvalid(ValueError):
    """The submission is invalid; nothing was enqueued. ``errors`` has one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("invalid translation request: " + "; ".join(errors))


class StepCall(BaseModel):
    """Everything a worker needs to make one step's LLM call (no secrets)."""

    model_config = ConfigDict(extra="forbid")

    step: StepName
    model: ModelInfo
    base_url: str
    base_url_env: str | None = None
    api_key_env: str | None = None
    price: Price
    temperature: float
    max_tokens: int
    timeout_s: float
    retries: int
    stop: list[str] = Field(default_factory=list)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Usage:
        amount = (
            prompt_tokens / 1000 * self.price.input_per_1k
            + completion_tokens / 1000 * self.price.output_per_1k
        )
        return Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=round(amount, 10),
            currency=self.price.currency,
        )

    def longest_run_s(self, parse_attempts: int) -> float:
        """Upper bound of one step's wall time, for the broker visibility timeout."""
        per_call = self.timeout_s * (self.retries + 1) + 60 * self.retries
        return per_call * parse_attempts


class CandidatePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    variant: str
    hint: str
    call: StepCall


class JobPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str
    request: TranslationRequest
    workflow_mode: WorkflowMode
    parallel_count: int
    strategy: StrategyDials
    candidates: list[CandidatePlan]
    evaluation: StepCall
    editor_review: StepCall
    translator_revision: StepCall
    criteria: list[Criterion]
    parse_retries: int
    judge_retries: int
    retention_s: int
    progress_weights: ProgressWeights
    routing: Routing
    offline: bool
    created_at: datetime


def offline_from_env() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _step_call(
    cfg: AppConfig,
    step: StepName,
    settings: StepSettings,
    *,
    offline: bool,
    model_key: str | None = None,
    temperature: float | None = None,
) -> StepCall:
    key = model_key or settings.model
    entry = cfg.models.models[key]
    info = ModelInfo(
        model=key,
        provider=entry.provider,
        api_model=entry.name,
        reasoning=entry.reasoning,
        temperature=temperature if temperature is not None else settings.temperature,
    )
    provider = cfg.models.providers[entry.provider]
    if offline:
        sim = cfg.models.models[cfg.models.simulator_model]
        provider = cfg.models.providers[sim.provider]
        # The simulator answers in the requested model's style (reasoning or not);
        # the price stays the real model's, so offline cost is an estimate.
        info = info.model_copy(update={"provider": sim.provider})
    return StepCall(
        step=step,
        model=info,
        base_url=provider.base_url,
        base_url_env=provider.base_url_env,
        api_key_env=provider.api_key_env,
        price=entry.price,
        temperature=info.temperature if info.temperature is not None else settings.temperature,
        max_tokens=settings.max_tokens,
        timeout_s=settings.timeout_s,
        retries=settings.retries,
        stop=settings.stop,
    )


def _format_errors(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "request"
        lines.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return lines


def validate_request(
    data: TranslationRequest | dict[str, Any], cfg: AppConfig
) -> TranslationRequest:
    """Validate against the config's limits; raise RequestInvalid with readable lines."""
    raw = data.model_dump() if isinstance(data, TranslationRequest) else data
    ctx = {"max_parallel_count": cfg.pipeline.parallel_count.max}
    try:
        return TranslationRequest.model_validate(raw, context=ctx)
    except ValidationError as exc:
        raise RequestInvalid(_format_errors(exc)) from None


def build_plan(
    data: TranslationRequest | dict[str, Any],
    cfg: AppConfig,
    *,
    job_id: str,
    offline: bool | None = None,
) -> JobPlan:
    request = validate_request(data, cfg)
    pipeline = cfg.pipeline
    offline = offline_from_env() if offline is None else offline
    mode = request.workflow_mode
    n = request.parallel_count or pipeline.default_parallel_count(mode)
    request = request.model_copy(update={"parallel_count": n})
    steps = pipeline.modes[mode].steps

    candidates = []
    for i in range(n):
        variant = pipeline.variant_for(i)
        translator = _step_call(
            cfg,
            StepName.INITIAL_TRANSLATION,
            steps[StepName.INITIAL_TRANSLATION],
            offline=offline,
            model_key=variant.model,
            temperature=variant.temperature,
        )
        candidates.append(
            CandidatePlan(index=i, variant=variant.name, hint=variant.hint, call=translator)
        )

    def call(step: StepName) -> StepCall:
        return _step_call(cfg, step, steps[step], offline=offline)

    return JobPlan(
        job_id=job_id,
        request=request,
        workflow_mode=mode,
        parallel_count=n,
        strategy=request.strategy.apply_to(pipeline.strategy_defaults),
        candidates=candidates,
        evaluation=call(StepName.EVALUATION),
        editor_review=call(StepName.EDITOR_REVIEW),
        translator_revision=call(StepName.TRANSLATOR_REVISION),
        criteria=pipeline.evaluation.criteria,
        parse_retries=pipeline.parse_retries,
        judge_retries=pipeline.evaluation.judge_retries,
        retention_s=pipeline.retention_s,
        progress_weights=pipeline.progress_weights,
        routing=pipeline.routing,
        offline=offline,
        created_at=utcnow(),
    )
