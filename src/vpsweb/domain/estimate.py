"""What a job will cost, known before it is paid for: calls, tokens and cost per step.

Pure and render-free: from a job's plan and the config's prices and prompt templates,
no store and no call. The figures are estimates (``vpsweb.domain.tokens``'s token
count, and a reasoned guess of each answer's length):

* **expected**: every step asked once per call it makes (N candidates, the judge in
  ``judge_orders`` orders, the editor, the revision, ``revision_check_orders`` checks),
  each answer about as long as such answers are (a translation about 1.5 x the poem's
  tokens, plus its notes; a judge's verdict a few hundred tokens; a reasoning model's
  thinking on top), never above the step's ``max_tokens``;
* **worst case**: every re-ask the plan allows (unparseable answers, one truncation
  re-ask), every answer at ``max_tokens``, and every fallback model doing as much.

Offline plans are priced at the real models' prices, as their usage is (see
``vpsweb.llm.endpoints.resolve``). Costs are per currency: a plan that mixes models
priced in different currencies has a total in each. Steps a person answers (manual
mode) cost nothing.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, computed_field

from vpsweb.config import AppConfig
from vpsweb.config.schema import ModelEntry
from vpsweb.domain.plan import JobPlan, StepCall
from vpsweb.domain.request import WorkflowMode
from vpsweb.domain.tokens import estimate_tokens
from vpsweb.stages.table import STAGES, Stage

TRANSLATION_FACTOR = 1.5  # a translation's tokens per source token, expected
NOTES = 250  # the title and the translator's notes around a translation
PER_CANDIDATE = 40  # a prompt's wrapper around each translation it quotes
LABEL_TOKENS = 3  # "[L12] " before each line the editor and the reviser see
JUDGE_FIXED = 150  # a verdict's analysis and rationale
JUDGE_PER_CANDIDATE = 60  # its scores for one candidate
CHECK_ANSWER = 200  # a revision check's verdict
EDITOR_FIXED = 300  # the editor's suggestions beyond about one per source token
REASONING = 1000  # a reasoning model's thinking, billed as answer tokens
TRUNCATION_REASKS = 1  # a cut-off answer is asked again once (stages.shared.ask)


class Figures(BaseModel):
    """Calls, tokens and cost (currency -> amount) of some calls."""

    model_config = ConfigDict(extra="ignore")  # "tokens" is computed (in the JSON too)

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: dict[str, float] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def plus(self, other: Figures) -> Figures:
        cost = dict(self.cost)
        for currency, amount in other.cost.items():
            cost[currency] = round(cost.get(currency, 0.0) + amount, 10)
        return Figures(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=cost,
        )

    def cost_text(self) -> str:
        return money(self.cost)


class StepEstimate(BaseModel):
    """One stage of the job: every call of it (all N candidates for the fan-out)."""

    model_config = ConfigDict(extra="forbid")

    step: str
    display_name: str
    models: list[str]
    manual: bool = False  # a person answers: no call, no cost
    expected: Figures
    worst: Figures


class JobEstimate(BaseModel):
    """The estimate of one planned job: per step, and for the job."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    workflow_mode: WorkflowMode
    parallel_count: int
    offline: bool
    max_cost: float | None = None
    steps: list[StepEstimate]
    expected: Figures
    worst: Figures
    # Every currency a call of the job may be priced in (fallback models included).
    currencies: list[str]

    def text(self) -> str:
        """The estimate as a table, for a terminal."""
        return render(self)


def money(cost: dict[str, float]) -> str:
    """``0.0342 CNY`` (or ``0.01 CNY + 0.002 USD``); ``0`` with no cost at all."""
    if not any(cost.values()):
        return "0"
    return " + ".join(f"{amount:.4g} {currency}" for currency, amount in sorted(cost.items()))


def _template_tokens(cfg: AppConfig, step: str, entry: ModelEntry) -> int:
    """The step's templates for this kind of model, unrendered: the fixed part of its
    prompt (the variables are counted apart)."""
    prompt = cfg.prompts.get(step)
    if prompt is None:
        return 0
    pair = prompt.for_model(reasoning=entry.reasoning)
    return estimate_tokens(pair.system) + estimate_tokens(pair.user)


def _sizes(plan: JobPlan) -> dict[str, tuple[int, int]]:
    """Each stage's variable prompt tokens (one call) and expected answer tokens."""
    req = plan.request
    poem = estimate_tokens(req.poem)
    lines = sum(1 for line in req.poem.splitlines() if line.strip())
    extra = sum(estimate_tokens(t) for t in (req.background_briefing, plan.strategy.few_shots) if t)
    terms = estimate_tokens(block) if (block := req.required_terms()) else 0  # the glossary's
    extra += terms
    text = math.ceil(TRANSLATION_FACTOR * poem)  # a translation alone
    translation = text + NOTES  # with its title and notes
    quoted = text + PER_CANDIDATE
    labelled = poem + LABEL_TOKENS * lines
    n = plan.parallel_count
    suggestions = poem + EDITOR_FIXED
    return {
        "initial_translation": (poem + extra, translation),
        "evaluation": (poem + n * quoted, JUDGE_FIXED + n * JUDGE_PER_CANDIDATE),
        # The editor also sees the runner-up candidates.
        "editor_review": (labelled + n * quoted, suggestions),
        "translator_revision": (labelled + translation + suggestions + terms, translation),
        "revision_check": (poem + 2 * quoted, CHECK_ANSWER),
    }


def _calls(plan: JobPlan, s: Stage) -> list[tuple[StepCall, int]]:
    """The stage's calls (the fan-out's one per candidate), each with its own prompt
    tokens beyond the stage's (a candidate's hint)."""
    if s.fan_out:
        return [(c.call, estimate_tokens(c.hint)) for c in plan.candidates]
    times = {"evaluation": plan.judge_orders, "revision_check": plan.revision_check_orders}
    return [(plan.steps[s.name], 0)] * times.get(s.name, 1)


def _asks(plan: JobPlan, step: str) -> int:
    """How many times one call may be asked, at worst: every parse re-ask and the
    truncation re-ask (``stages.shared.ask``)."""
    judged = step in ("evaluation", "revision_check")
    retries = plan.judge_retries if judged else plan.parse_retries
    return retries + 1 + TRUNCATION_REASKS


def _priced(entry: ModelEntry, calls: int, prompt: int, answer: int) -> Figures:
    price = entry.price
    amount = prompt / 1000 * price.input_per_1k + answer / 1000 * price.output_per_1k
    return Figures(
        calls=calls,
        prompt_tokens=prompt,
        completion_tokens=answer,
        cost={price.currency: round(amount, 10)},
    )


def _call_figures(
    cfg: AppConfig, call: StepCall, variable: int, answer: int, asks: int
) -> tuple[Figures, Figures]:
    """One call's expected and worst-case figures."""
    models = cfg.models.models
    entry = models[call.model]
    prompt = _template_tokens(cfg, call.step, entry) + variable
    thinking = REASONING if entry.reasoning else 0
    expected = _priced(entry, 1, prompt, min(answer + thinking, call.max_tokens))
    worst = Figures()
    for key in call.models():  # each fallback model may do as much as the model before it
        fallback = models.get(key)
        if fallback is not None:
            p = _template_tokens(cfg, call.step, fallback) + variable
            worst = worst.plus(_priced(fallback, asks, p * asks, call.max_tokens * asks))
    return expected, worst


def _step(cfg: AppConfig, plan: JobPlan, s: Stage, size: tuple[int, int]) -> StepEstimate:
    expected, worst = Figures(), Figures()
    calls = _calls(plan, s)
    manual = s.name in plan.manual_steps
    if not manual:
        for call, own in calls:
            e, w = _call_figures(cfg, call, size[0] + own, size[1], _asks(plan, s.name))
            expected, worst = expected.plus(e), worst.plus(w)
    models = list(dict.fromkeys(c.model for c, _ in calls))
    return StepEstimate(
        step=s.name,
        display_name=s.display_name,
        models=models,
        manual=manual,
        expected=expected,
        worst=worst,
    )


def _currencies(cfg: AppConfig, plan: JobPlan) -> list[str]:
    models = cfg.models.models
    keys = {key for call in plan.calls() for key in call.models()}
    return sorted({models[k].price.currency for k in keys if k in models})


def estimate_job(plan: JobPlan, cfg: AppConfig) -> JobEstimate:
    """The estimate of ``plan`` with ``cfg``'s prices and templates (its models must be
    ``cfg``'s: a plan made from this config, or checked against it)."""
    sizes = _sizes(plan)
    steps = [_step(cfg, plan, s, sizes[s.name]) for s in STAGES]
    expected, worst = Figures(), Figures()
    for step in steps:
        expected, worst = expected.plus(step.expected), worst.plus(step.worst)
    return JobEstimate(
        job_id=plan.job_id,
        workflow_mode=plan.workflow_mode,
        parallel_count=plan.parallel_count,
        offline=plan.offline,
        max_cost=plan.request.max_cost,
        steps=steps,
        expected=expected,
        worst=worst,
        currencies=_currencies(cfg, plan),
    )


def budget_problems(estimate: JobEstimate) -> list[str]:
    """Why the job's ``max_cost`` refuses it (empty: it may run, or it has no max_cost):
    the expected cost (not the worst case) is above it, or its calls are priced in more
    than one currency, which one amount cannot cap."""
    limit = estimate.max_cost
    if limit is None:
        return []
    if len(estimate.currencies) > 1:
        return [
            f"max_cost: this job's models are priced in {' and '.join(estimate.currencies)}; "
            "one max_cost cannot cap spending in several currencies: choose models priced "
            "in one currency (models.yaml, pipeline.yaml) or submit without max_cost"
        ]
    cost = sum(estimate.expected.cost.values())
    if cost <= limit:
        return []
    currency = estimate.currencies[0] if estimate.currencies else ""
    e = estimate.expected
    return [
        f"max_cost: {limit:g} {currency} is below this job's estimated cost {cost:.4g} "
        f"{currency} ({e.calls} calls, ~{e.tokens:,} tokens); raise max_cost or lower "
        "parallel_count"
    ]


def over_budget(plan: JobPlan, cfg: AppConfig) -> list[str]:
    """``budget_problems`` of the plan's estimate; nothing is estimated without a
    max_cost (a batch of 500 plans pays for no estimate it does not need)."""
    if plan.request.max_cost is None:
        return []
    return budget_problems(estimate_job(plan, cfg))


def budget_currency(plan: JobPlan, cfg: AppConfig) -> str:
    """The currency of a budgeted job's spend (its models', one by admission)."""
    found = _currencies(cfg, plan)
    return found[0] if found else ""


# --- the table ---------------------------------------------------------------------------

_HEAD = ("step", "model", "calls", "tokens", "cost", "worst calls", "worst tokens", "worst cost")


def _row(name: str, models: str, e: Figures, w: Figures) -> list[str]:
    return [
        name,
        models,
        str(e.calls),
        f"{e.tokens:,}",
        e.cost_text(),
        str(w.calls),
        f"{w.tokens:,}",
        w.cost_text(),
    ]


def render(estimate: JobEstimate) -> str:
    """The estimate as a plain-text table: a row per step and one for the job."""
    rows = [list(_HEAD)]
    for s in estimate.steps:
        models = ", ".join(s.models) + (" (manual: no cost)" if s.manual else "")
        rows.append(_row(s.display_name, models, s.expected, s.worst))
    rows.append(_row("Job", "", estimate.expected, estimate.worst))
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
    lines = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(-1, lines[1])
    offline = ", offline (priced at the real models' prices)" if estimate.offline else ""
    head = (
        f"estimate: {estimate.parallel_count} candidates, mode "
        f"{estimate.workflow_mode.value}{offline}"
    )
    tail = (
        "expected: each call asked once, answers of the usual length; worst case: every "
        "re-ask, every answer at max_tokens, every fallback model"
    )
    if estimate.max_cost is not None:
        tail += f"\nmax_cost: {estimate.max_cost:g} {'/'.join(estimate.currencies)}"
    return "\n".join([head, *(line.rstrip() for line in lines), tail])
