"""What a job may ask of the workers: checked by the client at submission, and again
by the workers against their own config before anything is sent.

A submitter chooses what to translate: the poem, languages, mode, N and strategy
dials, and models among those the workers know, within limits. It does not add a
model (or a provider, a URL, a key) the workers' config lacks, raise a step's
max_tokens, timeout or retries, or keep its job longer than the cluster keeps jobs:
the workers refuse such a plan, naming every reason.
"""

from __future__ import annotations

from vpsweb.config import AppConfig
from vpsweb.domain import sizing
from vpsweb.domain.estimate import over_budget
from vpsweb.domain.plan import JobPlan, StepCall, validate_request
from vpsweb.errors import RequestInvalid
from vpsweb.stages.table import STAGES

LIMITS = ("max_tokens", "timeout_s", "retries")


def _calls(plan: JobPlan) -> list[StepCall]:
    fan_in = [plan.steps[s.name] for s in STAGES if not s.fan_out]
    return [c.call for c in plan.candidates] + fan_in


def _job_limits(plan: JobPlan, cfg: AppConfig) -> list[str]:
    pipe = cfg.pipeline
    problems = []
    if len(plan.candidates) != plan.parallel_count:
        problems.append(
            f"the plan has {len(plan.candidates)} candidates for N={plan.parallel_count}"
        )
    for name, limit in (
        ("parse_retries", pipe.parse_retries),
        ("judge_retries", pipe.evaluation.judge_retries),
        ("judge_orders", pipe.evaluation.orders),
        ("revision_check_orders", pipe.evaluation.revision_check_orders),
        ("retention_s", pipe.retention_s),
        ("queue_allowance_s", pipe.queue_allowance_s),
    ):
        if getattr(plan, name) > limit:
            problems.append(f"{name} {getattr(plan, name)} exceeds this cluster's {limit}")
    return problems


def _unknown_models(call: StepCall, cfg: AppConfig) -> list[str]:
    """The step's model and its fallbacks must all be this cluster's: a submitter
    chooses among the workers' models, never adds one."""
    known = cfg.models.models
    return [
        f"{call.step}: {what} {key!r} is not in this cluster's models.yaml "
        f"(known: {', '.join(sorted(known))})"
        for what, key in [("model", call.model)] + [("fallback model", f) for f in call.fallbacks]
        if key not in known
    ]


def check_plan(plan: JobPlan, cfg: AppConfig) -> list[str]:
    """Every reason this config refuses the plan (empty: it may run)."""
    try:
        validate_request(plan.request, cfg)
    except RequestInvalid as exc:
        return exc.errors
    steps = cfg.pipeline.modes[plan.workflow_mode].steps
    problems = _job_limits(plan, cfg)
    for call in _calls(plan):
        problems += _unknown_models(call, cfg)
        limits = steps[call.step]
        if len(call.fallbacks) > len(limits.fallback):
            # Each fallback extends the step's worst case (its deadline and lease).
            problems.append(
                f"{call.step}: {len(call.fallbacks)} fallback model(s) exceed this "
                f"cluster's {len(limits.fallback)}"
            )
        problems += [
            f"{call.step}: {name} {getattr(call, name)} exceeds this cluster's "
            f"{getattr(limits, name)}"
            for name in LIMITS
            if getattr(call, name) > getattr(limits, name)
        ]
    problems = list(dict.fromkeys(problems))  # N candidates, one reason each
    if problems:
        return problems
    return sizing.problems(plan, cfg)


def require_fits(plan: JobPlan, cfg: AppConfig) -> JobPlan:
    """RequestInvalid (nothing enqueued) when a step cannot fit its model, or when the
    job's estimated cost is above its ``max_cost`` (every submission path plans through
    here: ``plan_job``, ``plan_batch``, the CLI and the web form)."""
    found = sizing.problems(plan, cfg) + over_budget(plan, cfg)
    if found:
        raise RequestInvalid(found)
    return plan
