"""Usage monitoring without a store: summaries, aggregation, the table, Prometheus text."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.metrics import parse_exposition
from tests.helpers.runner_doubles import StepLLM, plan_for
from vpsweb.cli.stats import parse_since
from vpsweb.config import load_config
from vpsweb.domain.models import CandidateResult, EvaluationResult, Totals
from vpsweb.domain.runner import run_job
from vpsweb.monitoring.usage import (
    JobSummary,
    counter_key,
    counters,
    parse_counter_key,
    prometheus,
    summary_of_ending,
    summary_of_output,
)
from vpsweb.monitoring.usage_stats import aggregate, percentile, table
from vpsweb.storage import JobStatus

NOW = 1_800_000_000.0
SINCE = NOW - 3600


def summary(**kw: Any) -> JobSummary:
    fields: dict[str, Any] = {
        "job_id": f"job{kw.get('finished_at', NOW)}",
        "finished_at": NOW - 60,
        "status": "succeeded",
        "workflow_mode": "hybrid",
        "parallel_count": 3,
    }
    return JobSummary.model_validate({**fields, **kw})


# Four hybrid N=3 jobs (two succeeded, one failed, one cancelled), one reasoning N=2,
# and one that ended before the window.
JOBS = [
    summary(
        job_id="a",
        prompt_tokens=100,
        completion_tokens=50,
        llm_calls=5,
        cost={"USD": 0.01},
        candidates_total=3,
        candidates_failed=1,
        evaluation_method="judge",
        duration_s=10,
    ),
    summary(
        job_id="b",
        prompt_tokens=200,
        completion_tokens=100,
        llm_calls=6,
        cost={"USD": 0.02, "CNY": 0.5},
        candidates_total=3,
        evaluation_method="fallback_line_count",
        judge_fallback=True,
        duration_s=20,
        warnings=["judge_unavailable"],
    ),
    summary(
        job_id="c",
        status="failed",
        prompt_tokens=60,
        completion_tokens=10,
        llm_calls=3,
        cost={"CNY": 0.1},
        candidates_total=3,
        candidates_failed=3,
        duration_s=300,
        failed_stage="Translation Evaluation",
    ),
    summary(job_id="d", status="cancelled", duration_s=2),
    summary(
        job_id="e",
        workflow_mode="reasoning",
        parallel_count=2,
        prompt_tokens=1000,
        completion_tokens=400,
        llm_calls=5,
        cost={"USD": 0.1},
        candidates_total=2,
        evaluation_method="judge_retry",
        duration_s=40,
    ),
    summary(job_id="old", finished_at=SINCE - 1, prompt_tokens=10**6, duration_s=999),
]


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)
    hundred = [float(i) for i in range(1, 101)]
    assert percentile(hundred, 0.5) == pytest.approx(50.5)
    assert percentile(hundred, 0.95) == pytest.approx(95.05)


def test_aggregate_per_mode_and_n() -> None:
    stats = aggregate(JOBS, SINCE, NOW)
    assert [(r.workflow_mode, r.parallel_count) for r in stats.rows] == [
        ("hybrid", 3),
        ("reasoning", 2),
    ]
    hybrid, reasoning = stats.rows
    assert (hybrid.jobs, hybrid.succeeded, hybrid.failed, hybrid.cancelled) == (4, 2, 1, 1)
    assert hybrid.success_rate == pytest.approx(2 / 3)  # the cancelled job is no failure
    assert (hybrid.prompt_tokens, hybrid.completion_tokens) == (360, 160)
    assert hybrid.tokens_per_job == 130  # (360 + 160) / 4: failed and cancelled jobs count
    assert hybrid.llm_calls_per_job == 3.5
    assert hybrid.cost == {"CNY": pytest.approx(0.6), "USD": pytest.approx(0.03)}
    assert hybrid.cost_per_job == {"CNY": pytest.approx(0.15), "USD": pytest.approx(0.0075)}
    assert (hybrid.candidates_failed, hybrid.candidates_total) == (4, 9)
    assert hybrid.candidate_failure_rate == pytest.approx(4 / 9)
    assert (hybrid.judge_fallbacks, hybrid.judged) == (1, 2)
    assert hybrid.judge_fallback_rate == 0.5
    assert (hybrid.with_warnings, hybrid.warnings) == (1, {"judge_unavailable": 1})
    assert (reasoning.with_warnings, reasoning.warnings) == (0, {})
    # Durations of succeeded jobs only: 10 and 20.
    assert hybrid.p50_duration_s == 15 and hybrid.p95_duration_s == pytest.approx(19.5)
    assert reasoning.success_rate == 1 and reasoning.cost_per_job == {"USD": 0.1}
    assert reasoning.judge_fallback_rate == 0

    overall = stats.overall
    assert (overall.workflow_mode, overall.parallel_count, overall.jobs) == ("all", None, 5)
    assert overall.success_rate == 0.75
    assert overall.tokens_per_job == (520 + 1400) / 5
    assert overall.cost_per_job == {"CNY": pytest.approx(0.12), "USD": pytest.approx(0.026)}
    assert overall.candidate_failure_rate == pytest.approx(4 / 11)
    assert overall.p50_duration_s == 20  # of 10, 20, 40
    assert overall.p95_duration_s == pytest.approx(38)


def test_no_jobs_gives_empty_figures_and_a_short_table() -> None:
    stats = aggregate(JOBS, NOW + 1, NOW + 2)
    assert stats.rows == [] and stats.overall.jobs == 0
    assert stats.overall.success_rate is None and stats.overall.tokens_per_job == 0
    assert table(stats).endswith(": none\n")


def test_the_table_has_a_row_per_group_and_an_overall_line() -> None:
    text = table(aggregate(JOBS, SINCE, NOW))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("mode"))
    assert header.split()[:4] == ["mode", "N", "jobs", "success"]
    hybrid = next(line for line in lines if line.startswith("hybrid"))
    assert "66.7%" in hybrid and "130" in hybrid
    assert "0.150000 CNY + 0.007500 USD" in hybrid  # mixed currencies, each per job
    assert "44.4% (4/9)" in hybrid and "1/2" in hybrid and "15.0" in hybrid
    overall = next(line for line in lines if line.startswith("all"))
    assert "75.0%" in overall and " 5 " in overall
    assert "warned" in header.split()
    assert lines[-1] == "warned: jobs that succeeded with a warning (judge_unavailable 1)"


def test_summary_of_a_finished_job_is_its_totals() -> None:
    # The judge answers without tags twice: the fallback rule picks.
    out = run_job(plan_for(3), load_config(), StepLLM(fail="evaluation"))
    failed = out.candidates[1].model_copy(update={"status": "failed", "error": "HTTP 500"})
    out = out.model_copy(update={"candidates": [out.candidates[0], failed, out.candidates[2]]})
    s = summary_of_output(out)
    assert (s.status, s.workflow_mode, s.parallel_count) == ("succeeded", "hybrid", 3)
    assert (s.prompt_tokens, s.completion_tokens) == (
        out.totals.prompt_tokens,
        out.totals.completion_tokens,
    )
    # 3 candidates, the judge twice in each of 2 orders, editor, reviser, 2 checks.
    assert s.llm_calls == out.totals.llm_calls == 3 + 2 * 2 + 1 + 1 + 2
    assert s.cost == out.totals.cost and s.duration_s == out.totals.duration_s
    assert (s.candidates_failed, s.candidates_total) == (1, 3)
    assert s.evaluation_method == "fallback_line_count" and s.judge_fallback
    assert s.warnings == ["judge_unavailable"]  # the pick was not judged, and says so
    assert s.finished_at == out.finished_at.timestamp() and s.failed_stage is None


def test_summary_of_an_ending_counts_what_had_finished() -> None:
    plan = plan_for(3)
    spent = Totals(prompt_tokens=70, completion_tokens=9, llm_calls=4, cost={"USD": 0.2})
    done = [
        CandidateResult(index=0, variant="literal", status="succeeded", translation="x"),
        CandidateResult(index=2, variant="musical", status="failed", error="HTTP 500"),
    ]
    judged = EvaluationResult(selected_index=0, rationale="r", method="single_candidate")
    s = summary_of_ending(
        plan, JobStatus.FAILED, spent, "Editor Review", candidates=done, evaluation=judged, now=5
    )
    assert (s.status, s.failed_stage, s.finished_at) == ("failed", "Editor Review", 5)
    assert (s.prompt_tokens, s.completion_tokens, s.llm_calls) == (70, 9, 4)
    assert (s.candidates_failed, s.candidates_total) == (1, 2)
    assert s.evaluation_method == "single_candidate" and not s.judge_fallback
    cancelled = summary_of_ending(plan, JobStatus.CANCELLED, Totals())
    assert cancelled.status == "cancelled" and cancelled.evaluation_method is None


def test_counters_of_one_job() -> None:
    c = counters(JOBS[1])
    base = {"mode": "hybrid", "parallel_count": "3", "status": "succeeded"}
    assert c[counter_key("vpsweb_jobs_total", base)] == 1
    assert c[counter_key("vpsweb_tokens_total", {**base, "kind": "prompt"})] == 200
    assert c[counter_key("vpsweb_tokens_total", {**base, "kind": "completion"})] == 100
    assert c[counter_key("vpsweb_cost_total", {**base, "currency": "CNY"})] == 0.5
    assert c[counter_key("vpsweb_candidates_total", {**base, "outcome": "succeeded"})] == 3
    assert c[counter_key("vpsweb_candidates_total", {**base, "outcome": "failed"})] == 0
    assert c[counter_key("vpsweb_judge_fallbacks_total", base)] == 1
    assert c[counter_key("vpsweb_job_duration_seconds_sum", base)] == 20
    assert c[counter_key("vpsweb_job_duration_seconds_count", base)] == 1
    warned = "vpsweb_jobs_with_warnings_total"
    assert c[counter_key(warned, {**base, "kind": "judge_unavailable"})] == 1
    assert c[counter_key(warned, {**base, "kind": "revision_check_unavailable"})] == 0
    assert c[counter_key(warned, {**base, "kind": "model_fallback"})] == 0
    assert len(c) == 14  # one warnings counter per kind (job_warnings.WARNING_KINDS)


def test_prometheus_text_is_valid_and_sums_jobs() -> None:
    total: dict[str, float] = {}
    for job in JOBS:
        for key, value in counters(job).items():
            total[key] = total.get(key, 0.0) + value
    text = prometheus(total)
    samples = parse_exposition(text)
    hybrid_ok = {("mode", "hybrid"), ("parallel_count", "3"), ("status", "succeeded")}
    assert samples[("vpsweb_jobs_total", frozenset(hybrid_ok))] == 3  # a, b, and "old"
    prompt = frozenset({*hybrid_ok, ("kind", "prompt")})
    assert samples[("vpsweb_tokens_total", prompt)] == 100 + 200 + 10**6
    usd = frozenset({*hybrid_ok, ("currency", "USD")})
    assert samples[("vpsweb_cost_total", usd)] == pytest.approx(0.03)
    failed = frozenset({("mode", "hybrid"), ("parallel_count", "3"), ("status", "failed")})
    cand_failed = frozenset({*failed, ("outcome", "failed")})
    assert samples[("vpsweb_candidates_total", cand_failed)] == 3
    assert samples[("vpsweb_job_duration_seconds_sum", failed)] == 300
    assert samples[("vpsweb_job_duration_seconds_count", failed)] == 1
    # prometheus_client's own parser reads it too, every family with its type.
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["vpsweb_jobs"] == "counter"
    assert families["vpsweb_job_duration_seconds"] == "summary"
    assert families["vpsweb_jobs_with_warnings"] == "counter"
    judge = frozenset({*hybrid_ok, ("kind", "judge_unavailable")})
    assert samples[("vpsweb_jobs_with_warnings_total", judge)] == 1
    assert len(families) == 8


def test_an_empty_store_still_declares_every_family() -> None:
    text = prometheus({})
    assert text.count("# HELP ") == text.count("# TYPE ") == 8
    assert parse_exposition(text) == {}


def test_label_values_are_escaped_and_keys_cannot_be_split() -> None:
    odd_mode, odd_currency = 'we"ird\\mode\nx', "U|S=D"
    job = summary(workflow_mode=odd_mode, cost={odd_currency: 1.5})
    c = counters(job)
    key = next(k for k in c if k.startswith("vpsweb_cost_total"))
    assert parse_counter_key(key) == (
        "vpsweb_cost_total",
        {
            "mode": odd_mode,
            "parallel_count": "3",
            "status": "succeeded",
            "currency": odd_currency,
        },
    )
    text = prometheus(c)
    assert 'mode="we\\"ird\\\\mode\\nx"' in text
    samples = parse_exposition(text)
    labels = frozenset(
        {
            ("mode", odd_mode),
            ("parallel_count", "3"),
            ("status", "succeeded"),
            ("currency", odd_currency),
        }
    )
    assert samples[("vpsweb_cost_total", labels)] == 1.5
    parsed = {
        s.labels["mode"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if "mode" in s.labels
    }
    assert parsed == {odd_mode}


def test_unknown_counter_keys_are_left_out() -> None:
    text = prometheus({"vpsweb_future_total|mode=hybrid": 3.0})
    assert "vpsweb_future_total" not in text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("24h", 86400), ("7d", 604800), ("90s", 90), ("1.5h", 5400), ("2H", 7200)],
)
def test_since_accepts_durations(text: str, seconds: float) -> None:
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["yesterday", "24", "h", "0h", "-1h", "1w", "24 hours", ""])
def test_since_refuses_anything_else(text: str) -> None:
    assert parse_since(text) is None
