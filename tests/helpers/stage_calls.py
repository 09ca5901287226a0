"""Calling the stages from tests with their direct inputs rather than a Prior.

The stage functions take (ctx, prior, index) so that workers and the in-process
runner can call every stage the same way; these wrappers build the Prior.
"""

from __future__ import annotations

from vpsweb.config import AppConfig, load_config
from vpsweb.domain.models import CandidateResult, EditorReview, EvaluationResult, Revision
from vpsweb.domain.plan import JobPlan, StepCall
from vpsweb.llm.endpoints import resolve
from vpsweb.stages.candidate import translate_candidate as _candidate
from vpsweb.stages.evaluation import evaluate as _evaluate
from vpsweb.stages.review import editor_review as _review
from vpsweb.stages.revision import translator_revision as _revision
from vpsweb.stages.shared import Prior, StageContext


def chosen_prior(chosen: CandidateResult, review: EditorReview | None = None) -> Prior:
    """A Prior whose evaluation selected ``chosen`` (other positions are never read)."""
    outputs: dict[str, object] = {
        "initial_translation": [chosen] * (chosen.index + 1),
        "evaluation": EvaluationResult(
            selected_index=chosen.index, rationale="test", method="judge"
        ),
    }
    if review is not None:
        outputs["editor_review"] = review
    return Prior(outputs)


def translate_candidate(ctx: StageContext, index: int) -> CandidateResult:
    return _candidate(ctx, Prior(), index)


def evaluate(ctx: StageContext, candidates: list[CandidateResult]) -> EvaluationResult:
    return _evaluate(ctx, Prior({"initial_translation": candidates}))


def editor_review(ctx: StageContext, chosen: CandidateResult) -> EditorReview:
    return _review(ctx, chosen_prior(chosen))


def translator_revision(
    ctx: StageContext, chosen: CandidateResult, review: EditorReview
) -> Revision:
    return _revision(ctx, chosen_prior(chosen, review))


def cost(call: StepCall, prompt_tokens: int, completion_tokens: int, cfg: AppConfig | None = None):
    """What a worker with ``cfg`` (default: the shipped config) bills for a call."""
    return resolve((cfg or load_config()).models, call).cost(prompt_tokens, completion_tokens)


def context(cfg: AppConfig, plan: JobPlan, llm, check=None) -> StageContext:
    return StageContext(plan=plan, prompts=cfg.prompts, llm=llm, models=cfg.models, check=check)


# LLM calls per step with the shipped config, when every answer parses at once: the
# judge is asked in two orders (one when a single candidate is eligible), and so is
# the revision check.
CALLS_PER_STEP = {
    "candidate": 1,
    "evaluation": 2,
    "editor_review": 1,
    "translator_revision": 1,
    "revision_check": 2,
}


def calls_per_job(n: int) -> int:
    judge = CALLS_PER_STEP["evaluation"] if n >= 2 else 1
    rest = sum(v for k, v in CALLS_PER_STEP.items() if k not in ("candidate", "evaluation"))
    return n + judge + rest
