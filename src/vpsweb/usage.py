"""Usage monitoring: what each ended job used, counted once, and summed for operators.

A ``JobSummary`` is made when a job ends (by whoever ended it: finalize, a failing
step, the sweeper, a client that cancels) and turned into cumulative counters
labelled by mode, parallel_count and status. The store keeps both (``UsageLog``);
``vpsweb stats`` aggregates the summaries of a period, Flower's /metrics exports
the counters. Nothing here talks to Redis: the store is passed in.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field

from vpsweb.models import CandidateResult, EvaluationResult, Totals
from vpsweb.plan import JobPlan
from vpsweb.stages.table import STAGES, TranslationOutput
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
        fan_out, judge = STAGES[0], table_stage("evaluation")
        keys = fan_out.keys(plan)
        raw = storage.jobs.load_steps(plan.job_id, [*keys, judge.key()])
        candidates = [CandidateResult.model_validate_json(r) for r in raw[:-1] if r]
        evaluation = EvaluationResult.model_validate_json(raw[-1]) if raw[-1] else None
        return summary_of_ending(
            plan,
            status,
            spent(storage, plan),
            stage_name,
            candidates=candidates,
            evaluation=evaluation,
        )

    return record_usage(storage, plan.retention_s, make)


# --- Prometheus ----------------------------------------------------------------------


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
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
        text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
        samples[family].append(f"{metric}{{{text}}} {_number(value)}")
    lines: list[str] = []
    for family, (kind, help_text) in FAMILIES.items():
        lines += [f"# HELP {family} {help_text}", f"# TYPE {family} {kind}"]
        lines += sorted(samples.get(family, []))
    return "\n".join(lines) + "\n"


# --- stats -------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation between the closest ranks (as
    numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


class StatsRow(BaseModel):
    """One group's figures. Rates are fractions (0..1); None where nothing was counted.

    success_rate: succeeded / (succeeded + failed) - a cancellation is the user's
      choice, not an error. Per-job figures divide by every job of the group (failed
      and cancelled jobs spent too). Durations: of succeeded jobs only.
    """

    workflow_mode: str  # "all" for the overall row
    parallel_count: int | None  # None for the overall row
    jobs: int
    succeeded: int
    failed: int
    cancelled: int
    success_rate: float | None
    prompt_tokens: int
    completion_tokens: int
    tokens_per_job: float
    llm_calls_per_job: float
    cost: dict[str, float]
    cost_per_job: dict[str, float]
    candidates_total: int
    candidates_failed: int
    candidate_failure_rate: float | None
    judged: int  # jobs that reached an evaluation
    judge_fallbacks: int
    judge_fallback_rate: float | None
    p50_duration_s: float | None
    p95_duration_s: float | None


class Stats(BaseModel):
    since: float
    until: float
    rows: list[StatsRow]
    overall: StatsRow


def _row(mode: str, n: int | None, group: list[JobSummary]) -> StatsRow:
    jobs = len(group)
    count = {s: sum(1 for x in group if x.status == s) for s in ("succeeded", "failed")}
    prompt = sum(x.prompt_tokens for x in group)
    completion = sum(x.completion_tokens for x in group)
    cost: dict[str, float] = defaultdict(float)
    for x in group:
        for currency, amount in x.cost.items():
            cost[currency] += amount
    cand_total = sum(x.candidates_total for x in group)
    cand_failed = sum(x.candidates_failed for x in group)
    judged = sum(1 for x in group if x.evaluation_method is not None)
    fallbacks = sum(1 for x in group if x.judge_fallback)
    durations = [x.duration_s for x in group if x.status == "succeeded"]
    return StatsRow(
        workflow_mode=mode,
        parallel_count=n,
        jobs=jobs,
        succeeded=count["succeeded"],
        failed=count["failed"],
        cancelled=jobs - count["succeeded"] - count["failed"],
        success_rate=_ratio(count["succeeded"], count["succeeded"] + count["failed"]),
        prompt_tokens=prompt,
        completion_tokens=completion,
        tokens_per_job=_ratio(prompt + completion, jobs) or 0.0,
        llm_calls_per_job=_ratio(sum(x.llm_calls for x in group), jobs) or 0.0,
        cost={c: round(v, 10) for c, v in sorted(cost.items())},
        cost_per_job={c: v / jobs for c, v in sorted(cost.items())},
        candidates_total=cand_total,
        candidates_failed=cand_failed,
        candidate_failure_rate=_ratio(cand_failed, cand_total),
        judged=judged,
        judge_fallbacks=fallbacks,
        judge_fallback_rate=_ratio(fallbacks, judged),
        p50_duration_s=percentile(durations, 0.5),
        p95_duration_s=percentile(durations, 0.95),
    )


def aggregate(summaries: Iterable[JobSummary], since: float, until: float | None = None) -> Stats:
    """Figures per (mode, N) and overall, over the jobs that ended in [since, until]."""
    until = time.time() if until is None else until
    chosen = [s for s in summaries if since <= s.finished_at <= until]
    groups: dict[tuple[str, int], list[JobSummary]] = defaultdict(list)
    for s in chosen:
        groups[(s.workflow_mode, s.parallel_count)].append(s)
    rows = [_row(mode, n, groups[(mode, n)]) for mode, n in sorted(groups)]
    return Stats(since=since, until=until, rows=rows, overall=_row("all", None, chosen))


# --- the CLI's table ---------------------------------------------------------------

COLUMNS: tuple[str, ...] = ("mode", "N", "jobs", "success", "tokens/job", "cost/job")
COLUMNS += ("cand. failed", "judge fb", "p50 s", "p95 s")


def _fmt(value: float | None, scale: float = 1.0, unit: str = "") -> str:
    return "-" if value is None else f"{scale * value:.1f}{unit}"


def _cells(row: StatsRow) -> list[str]:
    cost = " + ".join(f"{v:.6f} {c}" for c, v in row.cost_per_job.items()) or "-"
    failed = f"{row.candidates_failed}/{row.candidates_total}"
    return [
        row.workflow_mode,
        "" if row.parallel_count is None else str(row.parallel_count),
        str(row.jobs),
        _fmt(row.success_rate, 100, "%"),
        f"{row.tokens_per_job:,.0f}",
        cost,
        f"{_fmt(row.candidate_failure_rate, 100, '%')} ({failed})",
        f"{row.judge_fallbacks}/{row.judged}" if row.judged else "-",
        _fmt(row.p50_duration_s),
        _fmt(row.p95_duration_s),
    ]


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def table(stats: Stats) -> str:
    """A fixed-width table: one row per (mode, N), then the overall line."""
    title = f"jobs ended {_when(stats.since)} .. {_when(stats.until)}"
    if not stats.rows:
        return f"{title}: none\n"
    rows = [list(COLUMNS), *(_cells(r) for r in stats.rows), _cells(stats.overall)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]

    def line(cells: list[str]) -> str:
        # Text columns (mode, cost) left-aligned, figures right-aligned.
        return "  ".join(
            c.ljust(w) if i in (0, 5) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "-" * len(line(rows[0]))
    out = [title, "", line(rows[0]), rule, *(line(r) for r in rows[1:-1]), rule, line(rows[-1])]
    notes = "success: of jobs not cancelled; durations: succeeded jobs, submission to result"
    return "\n".join([*out, "", notes]) + "\n"
