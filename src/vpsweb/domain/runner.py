"""The in-process runner: the same stages in one process, with no Celery and no Redis.

What the workers do across processes, in one: the fan-out stage on a thread
pool, then each later stage in turn, then the same result assembly as finalize.
The benchmarks measure the distributed pipeline against it, and unit tests run
whole jobs through it with a test double for the LLM.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vpsweb.config import AppConfig
from vpsweb.domain.models import utcnow
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.result import TranslationOutput, assemble
from vpsweb.llm.client import LLMClient
from vpsweb.stages import runs
from vpsweb.stages.shared import Prior, StageContext
from vpsweb.stages.table import STAGES, Stage


def run_stage(ctx: StageContext, s: Stage, prior: Prior, *, sequential: bool = False) -> Any:
    """One stage's output (a list for a fan-out stage, its items run concurrently
    unless ``sequential``, as the original single-process application ran them)."""
    if not s.fan_out:
        return runs.run(s, ctx, prior, None)
    n = ctx.plan.parallel_count
    if sequential:
        return [runs.run(s, ctx, prior, i) for i in range(n)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda i: runs.run(s, ctx, prior, i), range(n)))


def run_job(
    plan: JobPlan,
    config: AppConfig,
    llm: LLMClient,
    *,
    sequential: bool = False,
    on_stage: Callable[[Stage, Any], None] | None = None,
) -> TranslationOutput:
    """Run a whole job; stage failures raise StageFailed as they would in a worker."""
    ctx = StageContext(plan=plan, prompts=config.prompts, llm=llm, models=config.models)
    prior = Prior()
    for s in STAGES:
        prior.outputs[s.name] = run_stage(ctx, s, prior, sequential=sequential)
        if on_stage is not None:
            on_stage(s, prior.outputs[s.name])
    return assemble(plan, prior.outputs, utcnow())
