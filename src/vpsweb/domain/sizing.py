"""Will each step of a job fit its model? Estimated at submission, before any call.

A poem too long for a step's ``max_tokens``, or an evaluation prompt (N
translations) larger than the judge's context window, would fail after the
candidates were paid for, or be silently truncated. The estimates are
deliberately generous: a translation may take up to twice the source's tokens.

Only the planned models are sized, not a step's fallbacks (``StepCall.fallbacks``):
a job that fits its models is not refused for a fallback it may never need. A
fallback too small for the job is refused by its provider (400), and the step then
fails naming both models' causes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vpsweb.config import AppConfig
from vpsweb.domain.plan import JobPlan, StepCall
from vpsweb.domain.tokens import estimate_tokens
from vpsweb.stages.table import STAGES

TRANSLATION_FACTOR = 2.0  # a translation's tokens per source token, at most
AROUND_TRANSLATION = 400  # title, poet and notes around a translation
PER_CANDIDATE = 40  # the evaluation prompt's wrapper around each candidate
JUDGE_PER_CANDIDATE = 120  # scores and a share of the analysis, per candidate
JUDGE_FIXED = 300
EDITOR_FIXED = 600  # suggestions beyond one per source line
LABEL_TOKENS = 3  # "[L12] " before each line the editor sees


@dataclass(frozen=True)
class StepSize:
    step: str
    model: str
    prompt: int
    answer: int
    max_tokens: int
    context_window: int


def _template_tokens(cfg: AppConfig, step: str, reasoning: bool) -> int:
    pair = cfg.prompts[step].for_model(reasoning=reasoning)
    return estimate_tokens(pair.system) + estimate_tokens(pair.user)


def estimate(plan: JobPlan, cfg: AppConfig) -> list[StepSize]:
    """Prompt and answer tokens of every step (one row per distinct candidate model)."""
    req = plan.request
    poem = estimate_tokens(req.poem)
    lines = sum(1 for line in req.poem.splitlines() if line.strip())
    extra = sum(estimate_tokens(t) for t in (req.background_briefing, plan.strategy.few_shots) if t)
    terms = estimate_tokens(block) if (block := req.required_terms()) else 0
    extra += terms
    translation = math.ceil(TRANSLATION_FACTOR * poem) + AROUND_TRANSLATION
    suggestions = poem + EDITOR_FIXED
    n = plan.parallel_count
    prompts = {
        "initial_translation": (poem + extra, translation),
        "evaluation": (
            poem + n * (translation + PER_CANDIDATE),
            JUDGE_FIXED + n * JUDGE_PER_CANDIDATE,
        ),
        # The editor also sees the runner-up candidates.
        "editor_review": (
            poem + LABEL_TOKENS * lines + n * (translation + PER_CANDIDATE),
            suggestions,
        ),
        "translator_revision": (
            poem + LABEL_TOKENS * lines + translation + suggestions + terms,
            translation,
        ),
        "revision_check": (poem + 2 * (translation + PER_CANDIDATE), JUDGE_FIXED),
    }
    rows: dict[tuple[str, str], StepSize] = {}
    for s in STAGES:
        variable, answer = prompts.get(s.name, (poem + translation, translation))
        calls: list[StepCall] = (
            [c.call for c in plan.candidates] if s.fan_out else [plan.steps[s.name]]
        )
        for call in calls:
            entry = cfg.models.models[call.model]
            fixed = _template_tokens(cfg, s.name, entry.reasoning)
            rows[(s.name, call.model)] = StepSize(
                step=s.name,
                model=call.model,
                prompt=fixed + variable,
                answer=answer,
                max_tokens=call.max_tokens,
                context_window=entry.context_window,
            )
    return list(rows.values())


def problems(plan: JobPlan, cfg: AppConfig) -> list[str]:
    """One line per step that cannot fit, naming the limit and the model."""
    found = []
    for size in estimate(plan, cfg):
        if size.answer > size.max_tokens:
            found.append(
                f"poem: too long for step {size.step} on {size.model}: its answer needs about "
                f"{size.answer:,} tokens but max_tokens is {size.max_tokens:,}; shorten the "
                f"poem (or split it), or raise max_tokens for {size.step} in pipeline.yaml"
            )
        elif size.max_tokens >= size.context_window:
            found.append(
                f"max_tokens: {size.max_tokens:,} for step {size.step} leaves no room for the "
                f"prompt in {size.model}'s context window of {size.context_window:,}; lower it "
                "in pipeline.yaml"
            )
        elif size.prompt + size.max_tokens > size.context_window:
            # The judge's prompt grows with N; every other prompt with the poem.
            field, fix = (
                ("parallel_count", "use fewer candidates")
                if size.step == "evaluation"
                else ("poem", "shorten the poem")
            )
            found.append(
                f"{field}: the {size.step} prompt needs about {size.prompt:,} tokens plus "
                f"{size.max_tokens:,} for the answer, more than {size.model}'s context "
                f"window of {size.context_window:,}; {fix}"
            )
    return found
