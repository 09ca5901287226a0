"""Usage monitoring: what each ended job used, counted once, and summed for operators.

A ``JobSummary`` is made when a job ends (by whoever ended it: finalize, a failing
step, the sweeper, a client that cancels) and turned into cumulative counters
labelled by mode, parallel_count and status. The store keeps both (``UsageLog``);
``vpsweb stats`` aggregates the summaries of a period (vpsweb.monitoring.usage_stats), Flower's
/metrics exports the counters. Nothing here talks to Redis: the store is passed in.
A succeeded job's warnings (a pick no judge made, a revision left unchecked) are
counted by kind, so that an operator sees a judge that stopped answering before a
reader does.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field

from vpsweb.domain.job_warnings import WARNING_KINDS
from vpsweb.domain.models import CandidateResult, EvaluationResult, Totals
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.result import TranslationOutput
from vpsweb.stages.table import STAGES
from vpsweb.stages.table import stage as table_stage

if TYPE_CHECKING:  # pragma: no cover - only for annotations
    from vpsweb.storage import JobStatus, Storage

log = logging.getLogger(__name__)

EndStatus = Literal["succeeded", "failed", "cancelled"]
FALLBACK_METHOD = "fallback_line_count"


class JobSummary(BaseModel):
    """One ended job's usage. Kept as JSON in the store; older or newer fields are
    ignored so that stats keep working across versions."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    finished_at: float  # epoch seconds
    status: EndStatus
    workflow_mode: str
    parallel_count: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    cost: dict[str, float] = Field(default_factory=dict)  # currency -> amount
    candidates_failed: int = 0
    candidates_total: int = 0  # candidates that finished (a failed job may have fewer)
    evaluation_method: str | None = None  # None: the job ended before an evaluation
    judge_fallback: bool = False
    duration_s: float = 0.0  # submission to end
    failed_stage: str | None = None
    warnings: list[str] = Field(default_factory=list)  # kinds (job_warnings.WarningKind)


def _common(plan_or_output: JobPlan | TranslationOutput, totals: Totals) -> dict[str, object]:
    return {
        "job_id": plan_or_output.job_id,
        "workflow_mode": plan_or_output.workflow_mode.value,
        "parallel_count": plan_or_output.parallel_count,
        "prompt_tokens": totals.prompt_tokens,
        "completion_tokens": totals.completion_tokens,
        "llm_calls": totals.llm_calls,
        "cost": dict(totals.cost),
        "duration_s": totals.duration_s,
    }


def summary_of_output(output: TranslationOutput) -> JobSummary:
    """A succeeded job, from its result (failed candidates and their calls included)."""
    method = output.evaluation.method
    return JobSummary.model_validate(
        {
            **_common(output, output.totals),
            "finished_at": output.finished_at.timestamp(),
            "status": "succeeded",
            "candidates_failed": sum(1 for c in output.candidates if c.status == "failed"),
            "candidates_total": len(output.candidates),
            "evaluation_method": method,
            "judge_fallback": method == FALLBACK_METHOD,
            "warnings": sorted({w.kind for w in output.warnings}),
        }
    )


def summary_of_ending(
    plan: JobPlan,
    status: JobStatus | EndStatus,
    spent: Totals,
    stage: str | None = None,
    *,
    candidates: Sequence[CandidateResult] = (),
    evaluation: EvaluationResult | None = None,
    now: float | None = None,
) -> JobSummary:
    """A job that failed or was cancelled: what it ``spent``, and the candidates and
    evaluation that had finished by then (a failed job may have fewer than N)."""
    method = evaluation.method if evaluation is not None else None
    return JobSummary.model_validate(
        {
            **_common(plan, spent),
            "finished_at": time.time() if now is None else now,
            "status": str(status),
            "candidates_failed": sum(1 for c in candidates if c.status == "failed"),
            "candidates_total": len(candidates),
            "evaluation_method": method,
            "judge_fallback": method == FALLBACK_METHOD,
            "warnings": sorted({w.kind for w in evaluation.warnings}) if evaluation else [],
            "failed_stage": stage,
        }
    )


# --- counters ----------------------------------------------------------------------

# Family -> (Prometheus type, help). The duration is a summary without quantiles:
# _sum and _count, from which rate() gives the mean.
FAMILIES: dict[str, tuple[str, str]] = {
    "vpsweb_jobs_total": ("counter", "Jobs ended, by workflow mode, parallel_count and status."),
    "vpsweb_tokens_total": ("counter", "LLM tokens billed (kind: prompt or completion)."),
    "vpsweb_cost_total": ("counter", "LLM cost billed, per currency."),
    "vpsweb_llm_calls_total": ("counter", "LLM HTTP calls made, retries included."),
    "vpsweb_candidates_total": ("counter", "Candidate translations finished, by outcome."),
    "vpsweb_judge_fallbacks_total": ("counter", "Evaluations decided by the fallback rule."),
    "vpsweb_jobs_with_warnings_total": (
        "counter",
        "Jobs that ended with a warning, by kind (judge_unavailable: no judge's verdict, "
        "picked by a rule; revision_check_unavailable: the revision was not checked).",
    ),
    "vpsweb_job_duration_seconds": ("summary", "Seconds from a job's submission to its end."),
}


def counter_key(metric: str, labels: dict[str, str]) -> str:
    """``metric|label=value|...``: values are percent-encoded, so no value can split it."""
    return "|".join([metric, *(f"{k}={quote(v, safe='')}" for k, v in labels.items())])


def parse_counter_key(key: str) -> tuple[str, dict[str, str]]:
    metric, *pairs = key.split("|")
    return metric, {name: unquote(v) for name, _, v in (p.partition("=") for p in pairs)}


def counters(summary: JobSummary) -> dict[str, float]:
    """The amounts one job adds to the cumulative counters (zeros too, so that every
    series exists from the first job of its kind)."""
    base = {
        "mode": summary.workflow_mode,
        "parallel_count": str(summary.parallel_count),
        "status": summary.status,
    }
    failed = summary.candidates_failed
    found: list[tuple[str, dict[str, str], float]] = [
        ("vpsweb_jobs_total", {}, 1),
        ("vpsweb_tokens_total", {"kind": "prompt"}, summary.prompt_tokens),
        ("vpsweb_tokens_total", {"kind": "completion"}, summary.completion_tokens),
        ("vpsweb_llm_calls_total", {}, summary.llm_calls),
        ("vpsweb_candidates_total", {"outcome": "succeeded"}, summary.candidates_total - failed),
        ("vpsweb_candidates_total", {"outcome": "failed"}, failed),
        ("vpsweb_judge_fallbacks_total", {}, summary.judge_fallback),
        *(
            ("vpsweb_jobs_with_warnings_total", {"kind": k}, k in summary.warnings)
            for k in WARNING_KINDS
        ),
        ("vpsweb_job_duration_seconds_sum", {}, summary.duration_s),
        ("vpsweb_job_duration_seconds_count", {}, 1),
        *(("vpsweb_cost_total", {"currency": c}, v) for c, v in summary.cost.items()),
    ]
    return {counter_key(m, {**base, **extra}): float(v) for m, extra, v in found}


def record_usage(storage: Storage, ttl: int, make: Callable[[], JobSummary]) -> bool:
    """Count an ended job. Never raises: the job has ended either way, and losing one
    job's figures is better than failing the task that ended it."""
    try:
        summary = make()
        storage.usage.record(summary.model_dump_json(), counters(summary), ttl)
        return True
    except Exception as exc:  # bookkeeping must never fail the job
        log.warning("usage of a job was not recorded: %s: %s", type(exc).__name__, exc)
        return False


def record_ending(
    storage: Storage,
    plan: JobPlan,
    status: JobStatus,
    spent: Callable[[Storage, JobPlan], Totals],
    stage_name: str | None = None,
) -> bool:
    """Count a job that failed or was cancelled, with ``spent(storage, plan)`` and the
    candidate and evaluation outputs it had stored (never raises)."""

    def make() -> JobSummary:
        raw = storage.jobs.load_steps(plan.job_id, ending_keys(plan))
        return ending_summary(plan, status, spent(storage, plan), stage_name, raw)

    return record_usage(storage, plan.retention_s, make)


def ending_keys(plan: JobPlan) -> list[str]:
    """The step outputs an ending's summary reads: the candidates, then the evaluation."""
    return [*STAGES[0].keys(plan), table_stage("evaluation").key()]


def ending_summary(
    plan: JobPlan,
    status: JobStatus,
    spent: Totals,
    stage_name: str | None,
    raw: list[str | None],
) -> JobSummary:
    """The summary of a failed or cancelled job from the outputs at ``ending_keys``."""
    candidates = [CandidateResult.model_validate_json(r) for r in raw[:-1] if r]
    evaluation = EvaluationResult.model_validate_json(raw[-1]) if raw[-1] else None
    return summary_of_ending(
        plan, status, spent, stage_name, candidates=candidates, evaluation=evaluation
    )


# --- Prometheus ----------------------------------------------------------------------


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _family(metric: str) -> str:
    for suffix in ("_sum", "_count"):
        if metric.endswith(suffix) and metric.removesuffix(suffix) in FAMILIES:
            return metric.removesuffix(suffix)
    return metric


def prometheus(counter_values: dict[str, float]) -> str:
    """The counters in Prometheus's text exposition format (0.0.4), every family with
    its HELP and TYPE lines; unknown keys (a newer vpsweb's) are left out."""
    samples: dict[str, list[str]] = defaultdict(list)
    for key, value in counter_values.items():
        metric, labels = parse_counter_key(key)
        family = _family(metric)
        if family not in FAMILIES:
            continue
        text = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
        samples[family].append(f"{metric}{{{text}}} {number(value)}")
    lines: list[str] = []
    for family, (kind, help_text) in FAMILIES.items():
        lines += [f"# HELP {family} {help_text}", f"# TYPE {family} {kind}"]
        lines += sorted(samples.get(family, []))
    return "\n".join(lines) + "\n"
