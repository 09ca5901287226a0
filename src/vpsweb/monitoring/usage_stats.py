"""`vpsweb stats`'s figures: the job summaries of a period, per mode and parallel_count.

Split from vpsweb.monitoring.usage along its seam: that module makes and counts a summary as a
job ends (the workers' side); this one reads many summaries back and aggregates
them for an operator (the CLI's side). Nothing here talks to Redis.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from vpsweb.domain.job_warnings import WARNING_KINDS
from vpsweb.monitoring.usage import JobSummary

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
    # Jobs that ended with a warning (succeeded, but a step fell back), and per kind.
    with_warnings: int = 0
    warnings: dict[str, int] = Field(default_factory=dict)


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
    kinds = {k: sum(1 for x in group if k in x.warnings) for k in WARNING_KINDS}
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
        with_warnings=sum(1 for x in group if x.warnings),
        warnings={k: n for k, n in kinds.items() if n},
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
COLUMNS += ("cand. failed", "judge fb", "warned", "p50 s", "p95 s")


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
        str(row.with_warnings) if row.with_warnings else "-",
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
    notes = ["success: of jobs not cancelled; durations: succeeded jobs, submission to result"]
    if stats.overall.warnings:
        kinds = ", ".join(f"{k} {n}" for k, n in stats.overall.warnings.items())
        notes.append(f"warned: jobs that succeeded with a warning ({kinds})")
    return "\n".join([*out, "", *notes]) + "\n"
