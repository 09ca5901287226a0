"""What every stage shares: its context, its inputs, usage recording and the ask loop.

No Celery, no Redis: a stage is a function of its inputs and an LLM client, so it
runs the same in a worker, in the in-process runner and in a unit test. Usage is
recorded over *all* billed calls, including answers that failed to parse,
because the user paid for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from vpsweb.domain import glossary, reasoning
from vpsweb.domain.languages import language_name
from vpsweb.domain.models import CandidateResult, EvaluationResult, ModelInfo, StepMetrics, utcnow
from vpsweb.domain.parsing import label_lines
from vpsweb.domain.prompts import PromptFile, RenderedPrompt, dial_variables, neutralise, render
from vpsweb.errors import (
    EmptyAnswer,
    LLMError,
    ParseError,
    StageFailed,
    TruncatedAnswer,
    one_line,
)
from vpsweb.llm.completion import Completion, LLMClient
from vpsweb.llm.endpoints import resolve

if TYPE_CHECKING:  # pragma: no cover - the plan module imports the stage table
    from vpsweb.config.schema import ModelsConfig
    from vpsweb.domain.plan import JobPlan, StepCall

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass
class StageContext:
    """What every stage needs: the plan, the prompt templates, the LLM, a cancel check,
    and the running process's models (which decide a model's kind and price: the
    worker's config, not the submitter's)."""

    plan: JobPlan
    prompts: dict[str, PromptFile]
    llm: LLMClient
    models: ModelsConfig
    check: Callable[[], float | None] | None = None

    def model(self, call: StepCall) -> ModelInfo:
        return resolve(self.models, call).info


@dataclass
class Prior:
    """Outputs of earlier stages, by stage name (a list for a fan-out stage)."""

    outputs: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, model: type[M]) -> M:
        value = self.outputs.get(name)
        if not isinstance(value, model):
            raise KeyError(f"output of stage {name!r} is not available")
        return value

    def items(self, name: str, model: type[M]) -> list[M]:
        value = self.outputs.get(name)
        if not isinstance(value, list) or not all(isinstance(v, model) for v in value):
            raise KeyError(f"outputs of fan-out stage {name!r} are not available")
        return value

    def candidates(self) -> list[CandidateResult]:
        return self.items("initial_translation", CandidateResult)

    def selected(self) -> CandidateResult:
        """The candidate the evaluation chose: what the editor and the reviser work on."""
        chosen = self.get("evaluation", EvaluationResult).selected_index
        return self.candidates()[chosen]


@dataclass
class Recorder:
    """Accumulates usage across attempts into one StepMetrics."""

    call: StepCall
    model: ModelInfo
    started: float = field(default_factory=time.monotonic)
    metrics: StepMetrics = field(init=False)
    # The reasoning behind the last billed answer: the one the stage parsed and kept.
    reasoning: str = ""

    def __post_init__(self) -> None:
        self.metrics = StepMetrics(model=self.model, started_at=utcnow())

    def billed(self, completion: Completion) -> None:
        m = self.metrics
        if completion.model is not None:
            m.model = completion.model
        m.usage = m.usage + completion.usage
        m.attempts += completion.attempts
        m.billed_calls += 1
        m.llm_latency_s += completion.latency_s
        self.reasoning = reasoning.kept(completion.reasoning_content)
        if completion.sim_latency_ms is not None:
            m.reported_latency_s = (m.reported_latency_s or 0.0) + completion.sim_latency_ms / 1000

    def failed(self, exc: LLMError) -> None:
        self.metrics.attempts += exc.attempts

    def fell_back(self, call: StepCall, model: ModelInfo, exc: LLMError) -> None:
        """The next calls go to ``call``'s (fallback) model; the metrics say which model
        was planned and why it did not answer. What was billed stays counted."""
        m = self.metrics
        if m.fallback_from is None:
            m.fallback_from, m.fallback_reason = self.call.model, one_line(str(exc))
        else:  # a fallback failed too: its cause is added to the planned model's
            m.fallback_reason = one_line(f"{m.fallback_reason}; then {exc}")
        self.call, self.model, m.model = call, model, model

    def done(self) -> StepMetrics:
        self.metrics.duration_s = round(time.monotonic() - self.started, 4)
        self.metrics.llm_latency_s = round(self.metrics.llm_latency_s, 4)
        self.metrics.finished_at = utcnow()
        return self.metrics


def in_parallel(fn: Callable[[Any], T], items: list[Any]) -> list[T]:
    """Independent calls of one step side by side (a judge asked in several orders):
    on free slots they cost the wall time of one."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def combine(recs: list[Recorder]) -> StepMetrics:
    """One step's metrics from calls made side by side (a judge asked in several
    orders): usage and attempts add up, the duration is the step's wall time."""
    parts = [r.done() for r in recs]
    total = parts[0].model_copy()
    for p in parts[1:]:
        total.usage = total.usage + p.usage
        total.attempts += p.attempts
        total.billed_calls += p.billed_calls
        total.llm_latency_s = round(total.llm_latency_s + p.llm_latency_s, 4)
    # Side by side: the critical path is the slowest call, not the sum.
    reported = [p.reported_latency_s for p in parts if p.reported_latency_s is not None]
    total.reported_latency_s = max(reported) if reported else None
    total.started_at = min((p.started_at for p in parts if p.started_at), default=None)
    total.finished_at = max((p.finished_at for p in parts if p.finished_at), default=None)
    total.duration_s = max(p.duration_s for p in parts)
    fell = [p for p in parts if p.fallback_from is not None]
    if fell:  # the step says a fallback answered if any of its calls fell back
        some = "" if len(fell) == len(parts) else f"in {len(fell)} of {len(parts)} calls: "
        total.model, total.fallback_from = fell[0].model, fell[0].fallback_from
        total.fallback_reason = one_line(f"{some}{fell[0].fallback_reason}")
    return total


TRUNCATION_NOTE = (
    "Your previous answer was cut off: it reached the length limit before it was "
    "complete. Answer again in full, more concisely (keep the notes short), and close "
    "every tag."
)


def ask(
    ctx: StageContext,
    rec: Recorder,
    prompt: RenderedPrompt,
    parse: Callable[[str], T],
    *,
    parse_attempts: int,
) -> T:
    """Call and parse (``ask_model``); when the model fails the call after the client's
    own retries and the call has fallbacks, the same prompt goes to the next one.

    Any LLMError is a reason to fall back: a provider's refusal (400/401/404), retries
    exhausted (5xx, 429, timeouts), a quota wait longer than the step's worst case, and
    a missing API key too (this worker cannot use the planned model's provider; a
    fallback on another provider may answer). Cancelled, Late and AwaitingAnswer are
    not LLMErrors: they end the step as before. An unusable answer is not a provider's
    failure either: it is re-asked of the same model. A fallback gets its own re-asks;
    a prompt built by ``stage_prompt`` is rendered again for the fallback's kind
    (reasoning or not). When the last model fails, the error names the planned one's
    cause too."""
    while True:
        try:
            return ask_model(ctx, rec, prompt, parse, parse_attempts=parse_attempts)
        except LLMError as exc:
            fallback = rec.call.next_fallback()
            if fallback is None:
                _name_planned(rec, exc)
                raise
            rec.fell_back(fallback, ctx.model(fallback), exc)
            if isinstance(prompt, StagePrompt):
                prompt = stage_prompt(
                    ctx, prompt.step, fallback, prompt.variables, appendix=prompt.appendix
                )


def _name_planned(rec: Recorder, exc: LLMError) -> None:
    """A fallback's failure says the planned model's too: the step failed on both."""
    m = rec.metrics
    if m.fallback_from is not None:
        exc.args = (
            f"fallback model {rec.call.model} failed too: {exc} (the step's model "
            f"{m.fallback_from} failed first: {m.fallback_reason})",
        )


def ask_model(
    ctx: StageContext,
    rec: Recorder,
    prompt: RenderedPrompt,
    parse: Callable[[str], T],
    *,
    parse_attempts: int,
) -> T:
    """Call and parse on ``rec.call``'s model. An unparseable answer is re-asked up to
    ``parse_attempts`` times in all; a truncated one (cut off at max_tokens) once more,
    with a note asking for a shorter answer, and then it is a failure that names the
    limit."""
    messages = prompt.messages()
    parse_left, truncations_left = parse_attempts, 1
    while True:
        try:
            completion = ctx.llm.complete(rec.call, messages, check=ctx.check)
        except LLMError as exc:
            rec.failed(exc)
            raise
        rec.billed(completion)
        try:
            if completion.finish_reason == "length":
                raise TruncatedAnswer("the answer reached max_tokens", excerpt="")
            return parse(completion.content)
        except TruncatedAnswer as exc:
            if truncations_left == 0:
                raise TruncatedAnswer(
                    f"the answer was cut off twice at max_tokens={rec.call.max_tokens} "
                    f"({rec.metrics.model.model}), the second time after being asked for a "
                    f"shorter one; shorten the poem or raise max_tokens for {rec.call.step}",
                    excerpt=exc.excerpt,
                ) from None
            truncations_left -= 1
            messages = [*prompt.messages(), {"role": "user", "content": TRUNCATION_NOTE}]
        except ParseError as exc:
            parse_left -= 1
            if parse_left == 0:
                if isinstance(exc, EmptyAnswer):
                    raise _empty(rec, exc, parse_attempts) from None
                raise


def _empty(rec: Recorder, exc: EmptyAnswer, asked: int) -> EmptyAnswer:
    """An empty answer, said of whoever gave it: no tag can be "missing" from nothing."""
    times = f" (asked {asked} times)" if asked > 1 else ""
    detail = str(exc).removeprefix("the answer is empty")  # "" or " apart from <think> ..."
    model = rec.metrics.model.model
    return EmptyAnswer(f"the model ({model}) returned an empty answer{detail}{times}")


def common_variables(plan: JobPlan, *, labelled: bool = False) -> dict[str, Any]:
    """Variables every prompt gets: the poem (with [L1] labels where lines are cited)."""
    req = plan.request
    poem = neutralise(req.poem)
    return {
        "original_poem": label_lines(poem) if labelled else poem.strip("\n"),
        "source_lang": language_name(req.source_lang),
        "target_lang": language_name(req.target_lang, target=True),
        "poem_title": neutralise(req.title),
        "poet_name": neutralise(req.author),
        **dial_variables(plan.strategy),
    }


@dataclass(frozen=True)
class StagePrompt(RenderedPrompt):
    """A stage's rendered prompt, with what it was rendered from: a fallback model of
    another kind (reasoning or not) gets the prompt rendered from its own templates."""

    step: str = ""
    variables: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    appendix: str = ""


def stage_prompt(
    ctx: StageContext, step: str, call: StepCall, variables: dict[str, Any], *, appendix: str = ""
) -> StagePrompt:
    """The step's prompt for ``call``'s model; ``appendix`` (the glossary's required
    terms) ends the user message whatever the templates say, so that an operator's own
    prompt files cannot drop it."""
    reasoning = ctx.model(call).reasoning
    done = render(ctx.prompts[step].for_model(reasoning=reasoning), variables)
    user = f"{done.user}\n\n{appendix}" if appendix else done.user
    return StagePrompt(
        system=done.system, user=user, step=step, variables=variables, appendix=appendix
    )


def required_terms(plan: JobPlan) -> str:
    """The job's "Required terms" block for a translation or revision prompt ("" for
    none: no glossary, or none of its terms occurs)."""
    return plan.request.required_terms()


def glossary_misses(plan: JobPlan, translation: str, title: str, poet: str) -> list[str]:
    """What a translated text (with its title and poet's name) misses of the glossary."""
    req, translated = plan.request, glossary.Texts(poem=translation, title=title, poet=poet)
    return glossary.reasons(req.glossary, req.glossary_texts(), translated)


def described(exc: Exception) -> str:
    """An error for the job's own record: the cause, and for an unusable answer a short,
    labelled excerpt of it (never for Celery results or Flower)."""
    excerpt = getattr(exc, "excerpt", "")
    return one_line(f"{exc} (the answer began: {excerpt!r})" if excerpt else str(exc))


def failure(step: str, display_name: str, rec: Recorder, exc: Exception) -> StageFailed:
    """A stage's failure with the usage it was billed for, so totals stay honest."""
    excerpt = getattr(exc, "excerpt", "")
    return StageFailed(step, display_name, one_line(str(exc)), metrics=rec.done(), excerpt=excerpt)
