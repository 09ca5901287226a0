"""A job's plan: the validated request resolved against the config at submission.

The plan fixes, once, which model, temperature and variant every step uses, so
that every worker runs the job the user submitted even if worker configs drift.
It names models, never endpoints or keys: workers resolve those themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vpsweb import settings
from vpsweb.config import AppConfig
from vpsweb.config.schema import Criterion, GateSettings, StepSettings
from vpsweb.domain.models import (
    WAIT_ALL,
    Priority,
    StragglerPolicy,
    StrategyDials,
    TranslationRequest,
    WorkflowMode,
    utcnow,
)
from vpsweb.errors import RequestInvalid
from vpsweb.llm.backoff import MAX_RETRY_AFTER_S
from vpsweb.stages.table import STAGES

# Longest wait between attempts: the LLM client caps Retry-After (jitter included).
MAX_BACKOFF_S = MAX_RETRY_AFTER_S


class StepCall(BaseModel):
    """One step's call as the submitter planned it: a model named in models.yaml and
    sampling parameters and limits. No URL and no key variable: each worker resolves
    those from its own config (vpsweb.llm.endpoints) and re-checks the limits
    (``check_plan``)."""

    model_config = ConfigDict(extra="forbid")

    step: str
    model: str  # key in models.yaml
    temperature: float = Field(ge=0, le=2)
    max_tokens: int
    timeout_s: float
    retries: int
    stop: list[str] = Field(default_factory=list)
    offline: bool = False  # the job asked for the offline simulator
    # Models (keys in models.yaml) that answer, in order, when this one fails the step
    # after its retries; plans stored before fallbacks existed have none.
    fallbacks: list[str] = Field(default_factory=list)

    def budget_s(self) -> float:
        """Worst case of one call on one model: every attempt runs to its timeout, then
        waits the longest back-off."""
        return self.timeout_s * (self.retries + 1) + MAX_BACKOFF_S * self.retries

    def models(self) -> list[str]:
        """The step's model, then its fallbacks: every model the step may call."""
        return [self.model, *self.fallbacks]

    def next_fallback(self) -> StepCall | None:
        """The same call on the first fallback model (its sampling settings and limits
        kept), with the fallbacks after it; None when none is left."""
        if not self.fallbacks:
            return None
        first, *rest = self.fallbacks
        return self.model_copy(update={"model": first, "fallbacks": rest})


class CandidatePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    variant: str
    hint: str
    call: StepCall


# Steps that ask a judge, in several orders (and re-ask it up to judge_retries).
JUDGED_STEPS = ("evaluation", "revision_check")


class JobPlan(BaseModel):
    """``candidates`` plans the fan-out stage; ``steps`` every other stage by name."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    request: TranslationRequest
    workflow_mode: WorkflowMode
    parallel_count: int
    strategy: StrategyDials
    candidates: list[CandidatePlan]
    steps: dict[str, StepCall]
    criteria: list[Criterion]
    parse_retries: int
    judge_retries: int
    judge_orders: int = 1  # judge calls per evaluation, each in another order
    min_agreement: float = 0.75
    revision_check_orders: int = 0  # 0: the revision is kept unchecked
    gates: GateSettings = Field(default_factory=GateSettings)
    # Plans stored before straggler policies existed waited for every candidate.
    straggler: StragglerPolicy = WAIT_ALL
    # Stages a person answers (manual mode): their prompts wait in the store.
    manual_steps: list[str] = Field(default_factory=list)
    retention_s: int
    queue_allowance_s: int = 900
    progress_weights: dict[str, float]
    offline: bool
    created_at: datetime
    # Quota fair share: interactive calls wait first; batch jobs share the rest
    # round-robin by batch (a job alone is its own batch).
    priority: Priority = Priority.INTERACTIVE
    batch_id: str | None = None
    # The batch's budget when it has one: each call first checks the batch's spend
    # (``Batches.spend_check``), so that none is made once the batch's spend reaches it.
    batch_budget: float | None = None

    @property
    def flow(self) -> str:
        """Whose turn a call waits for: the job's batch, or the job itself."""
        return self.batch_id or self.job_id

    def call(self, step: str, index: int | None = None) -> StepCall:
        if index is not None:
            return self.candidates[index].call
        return self.steps[step]

    def calls(self) -> list[StepCall]:
        return [c.call for c in self.candidates] + list(self.steps.values())

    def step_budget_s(self, step: str, index: int | None = None) -> float:
        """Worst case of one step: its call's budget for every answer it may re-ask."""
        judged = step in JUDGED_STEPS
        retries = self.judge_retries if judged else self.parse_retries
        call = self.call(step, index)
        # Each fallback model may spend a whole budget of its own after the model before it.
        return call.budget_s() * (retries + 1) * len(call.models())

    def step_slot_s(self, step: str, index: int | None = None) -> float:
        """The longest one step may run: waiting for its provider's quota (within the
        queue allowance) plus its worst case. Its lease and its broker message are kept
        that long, so that a long quota wait is never taken for a dead worker."""
        return self.queue_allowance_s + self.step_budget_s(step, index)

    def remaining_budget_s(self, step: str) -> float:
        """Worst case from the start of ``step`` to the end of the job (a fan-out stage
        takes as long as its slowest item)."""
        names = [s.name for s in STAGES]
        total = 0.0
        for s in STAGES[names.index(step) :]:
            items = range(self.parallel_count) if s.fan_out else [None]
            total += max(self.step_budget_s(s.name, i) for i in items)
        return total

    def worst_case_s(self) -> float:
        """The longest a job can run before it is failed as stalled: every stage waiting
        its full queue allowance and spending its full budget."""
        return len(STAGES) * self.queue_allowance_s + self.remaining_budget_s(STAGES[0].name)

    def deadline_after(self, step: str, now: float) -> float:
        """When the job is stalled if ``step`` starts (or is queued) at ``now``."""
        return now + self.queue_allowance_s + self.remaining_budget_s(step)


def _step_call(
    cfg: AppConfig,
    step: str,
    settings_: StepSettings,
    *,
    offline: bool,
    model_key: str | None = None,
    temperature: float | None = None,
) -> StepCall:
    model = model_key or settings_.model
    return StepCall(
        step=step,
        model=model,
        temperature=temperature if temperature is not None else settings_.temperature,
        max_tokens=settings_.max_tokens,
        timeout_s=settings_.timeout_s,
        retries=settings_.retries,
        stop=settings_.stop,
        offline=offline,
        # A variant's own model keeps the step's fallbacks (but not itself among them).
        fallbacks=[f for f in settings_.fallback if f != model],
    )


def _candidate(
    cfg: AppConfig, stage: str, i: int, step: StepSettings, *, offline: bool
) -> CandidatePlan:
    """Candidate i's variant. A variant used again (N above the number of variants) is
    named as a new take (``literal-2``), with the stated change appended to its hint and
    its temperature stepped, so that no two candidates send the same prompt at the same
    settings (a near-duplicate is a paid call that adds no choice)."""
    pipeline = cfg.pipeline
    variant = pipeline.variant_for(i)
    take = i // len(pipeline.variants)
    name, hint, temperature = variant.name, variant.hint, variant.temperature
    if take:
        repeat = pipeline.variant_repeat
        name, hint = f"{name}-{take + 1}", f"{hint} {repeat.hint}"
        base = temperature if temperature is not None else step.temperature
        temperature = min(2.0, round(base + take * repeat.temperature_step, 3))
    call = _step_call(
        cfg,
        stage,
        step,
        offline=offline,
        model_key=variant.model,
        temperature=temperature,
    )
    return CandidatePlan(index=i, variant=name, hint=hint, call=call)


def format_errors(exc: ValidationError) -> list[str]:
    """One line per error ("field: what"), in ``exc.errors()``'s order, in a
    translator's words: a batch source prefixes each with the place it came from."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "request"
        said = _said_for_translators(err) or err["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {said}")
    return lines


_NAMES = {"few_shots": "few-shot text"}  # "the few shots has ..." reads wrong


def _said_for_translators(err: Any) -> str | None:
    """Lengths in a translator's words: pydantic's "String should have at least 1
    character" is a programmer's; the CLI, the client and the web form all show this."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if not err["loc"] or not isinstance(value, str):
        return None
    field = str(err["loc"][-1])
    what = "the " + _NAMES.get(field, field.replace("_", " "))
    if kind == "string_too_short" and not value:
        hint = "; paste or load the poem's text" if what == "the poem" else ""
        return f"{what} is empty{hint}"
    if kind == "string_too_long" and "max_length" in ctx:
        return f"{what} has {len(value):,} characters; the limit is {ctx['max_length']:,}"
    return None


def validate_request(
    data: TranslationRequest | dict[str, Any], cfg: AppConfig
) -> TranslationRequest:
    """Validate against the config's limits; raise RequestInvalid with readable lines."""
    raw = data.model_dump() if isinstance(data, TranslationRequest) else data
    ctx = {"max_parallel_count": cfg.pipeline.parallel_count.max}
    try:
        return TranslationRequest.model_validate(raw, context=ctx)
    except ValidationError as exc:
        raise RequestInvalid(format_errors(exc)) from None


def manual_stages(manual: bool | list[str] | tuple[str, ...]) -> list[str]:
    """The stages answered by hand: all of them (True), none (False), or those named
    (stage names; a candidate key such as candidate-0 means the candidates' stage)."""
    if manual is True:
        return [s.name for s in STAGES]
    if manual is False:
        return []
    aliases = {s.name: s.name for s in STAGES} | {s.item: s.name for s in STAGES if s.fan_out}
    unknown = [m for m in manual if m not in aliases]
    if unknown:
        allowed = ", ".join(aliases)
        raise RequestInvalid(
            [f"manual: unknown step(s) {', '.join(map(repr, unknown))}; allowed: {allowed}"]
        )
    return [s.name for s in STAGES if s.name in {aliases[m] for m in manual}]


def build_plan(
    data: TranslationRequest | dict[str, Any],
    cfg: AppConfig,
    *,
    job_id: str,
    offline: bool | None = None,
    manual: bool | list[str] | tuple[str, ...] = False,
) -> JobPlan:
    hand = manual_stages(manual)
    request = validate_request(data, cfg)
    pipeline = cfg.pipeline
    offline = settings.offline() if offline is None else offline
    mode = request.workflow_mode
    n = request.parallel_count or pipeline.default_parallel_count(mode)
    request = request.model_copy(update={"parallel_count": n})
    mode_steps = pipeline.modes[mode].steps

    candidates: list[CandidatePlan] = []
    steps: dict[str, StepCall] = {}
    for s in STAGES:
        if not s.fan_out:
            steps[s.name] = _step_call(cfg, s.name, mode_steps[s.name], offline=offline)
            continue
        for i in range(n):
            candidates.append(_candidate(cfg, s.name, i, mode_steps[s.name], offline=offline))

    return JobPlan(
        job_id=job_id,
        request=request,
        workflow_mode=mode,
        parallel_count=n,
        strategy=request.strategy.apply_to(pipeline.strategy_defaults),
        candidates=candidates,
        steps=steps,
        criteria=pipeline.evaluation.criteria,
        parse_retries=pipeline.parse_retries,
        judge_retries=pipeline.evaluation.judge_retries,
        # A person judges once: asking them again in another order is no help.
        judge_orders=1 if "evaluation" in hand else pipeline.evaluation.orders,
        min_agreement=pipeline.evaluation.min_agreement,
        revision_check_orders=min(1, pipeline.evaluation.revision_check_orders)
        if "revision_check" in hand
        else pipeline.evaluation.revision_check_orders,
        gates=pipeline.gates,
        # A person answering candidates by hand is never late.
        straggler=WAIT_ALL
        if STAGES[0].name in hand
        else request.straggler or pipeline.straggler_for(mode),
        manual_steps=hand,
        retention_s=pipeline.retention_s,
        queue_allowance_s=pipeline.queue_allowance_s,
        progress_weights=cfg.progress_weights(),
        offline=offline,
        created_at=utcnow(),
        priority=request.priority or Priority.INTERACTIVE,
    )
