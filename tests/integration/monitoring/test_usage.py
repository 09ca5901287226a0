"""Usage monitoring against a real cluster: jobs of several modes and sizes, one with a
failing candidate, one failed, one cancelled; the counters, `vpsweb stats` and
Flower's /metrics must agree exactly with what the jobs themselves report."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.cli import run_cli
from tests.helpers.cluster import Cluster
from tests.helpers.config import make_config_dir, use_models
from tests.helpers.flower import PASSWORD, USER, base_env, get, start_flower
from tests.helpers.metrics import parse_exposition
from vpsweb import settings
from vpsweb.client.sync import Client, Job
from vpsweb.config import load_config
from vpsweb.domain.job_warnings import WARNING_KINDS
from vpsweb.domain.models import Totals
from vpsweb.errors import Cancelled, JobCancelled, JobFailed
from vpsweb.llm.client import OpenAICompatibleClient
from vpsweb.local.processes import stop_process
from vpsweb.monitoring.flower import flower_environment
from vpsweb.monitoring.quota_stats import FAMILIES as QUOTA_FAMILIES
from vpsweb.monitoring.usage import JobSummary, parse_counter_key
from vpsweb.monitoring.usage_stats import Stats
from vpsweb.orchestrator.execution import Services, finalize
from vpsweb.orchestrator.lifecycle import cancel_job, fail_job

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Sample = tuple[str, frozenset[tuple[str, str]]]


class Ended:
    """What a job itself reports when it ends: its totals and candidates."""

    def __init__(self, job: Job, mode: str, n: int) -> None:
        self.job, self.mode, self.n = job, mode, n
        self.status = "succeeded"
        self.candidates_failed = 0
        self.candidates_total = n  # failed and cancelled jobs here end after the candidates
        self.fallback = 0
        self.warnings: set[str] = set()
        try:
            out = job.result(timeout=90)
        except JobFailed as exc:
            self.status, self.totals = "failed", exc.spent
        except JobCancelled:
            self.status, self.totals = "cancelled", job.spent()
        else:
            self.totals = out.totals
            self.candidates_failed = sum(1 for c in out.candidates if not c.ok)
            self.candidates_total = len(out.candidates)
            self.fallback = int(out.evaluation.method == "fallback_line_count")
            self.warnings = {w.kind for w in out.warnings}
        assert isinstance(self.totals, Totals)

    def expected(self) -> dict[Sample, float]:
        base = {("mode", self.mode), ("parallel_count", str(self.n)), ("status", self.status)}
        t, failed = self.totals, self.candidates_failed
        found: dict[Sample, float] = {
            ("vpsweb_jobs_total", frozenset(base)): 1,
            ("vpsweb_tokens_total", frozenset({*base, ("kind", "prompt")})): t.prompt_tokens,
            ("vpsweb_tokens_total", frozenset({*base, ("kind", "completion")})): (
                t.completion_tokens
            ),
            ("vpsweb_llm_calls_total", frozenset(base)): t.llm_calls,
            ("vpsweb_candidates_total", frozenset({*base, ("outcome", "failed")})): failed,
            ("vpsweb_candidates_total", frozenset({*base, ("outcome", "succeeded")})): (
                self.candidates_total - failed
            ),
            ("vpsweb_judge_fallbacks_total", frozenset(base)): self.fallback,
            **{
                ("vpsweb_jobs_with_warnings_total", frozenset({*base, ("kind", k)})): (
                    k in self.warnings
                )
                for k in WARNING_KINDS
            },
            ("vpsweb_job_duration_seconds_count", frozenset(base)): 1,
        }
        for currency, amount in t.cost.items():
            found[("vpsweb_cost_total", frozenset({*base, ("currency", currency)}))] = amount
        return found


def summed(jobs: list[Ended]) -> dict[Sample, float]:
    total: dict[Sample, float] = defaultdict(float)
    for e in jobs:
        for key, value in e.expected().items():
            total[key] += value
    return dict(total)


def assert_matches(expected: dict[Sample, float], found: dict[Sample, float]) -> None:
    """Every expected sample exactly (costs to float precision); durations apart."""
    durations = {k for k in found if k[0] == "vpsweb_job_duration_seconds_sum"}
    assert set(found) - durations == set(expected)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp=tmp_path)
    try:
        c.add_worker()
        yield c
    finally:
        c.close()


def client_with(c: Cluster, tmp: Path, edit: Any) -> Client:
    client = Client(
        redis_url=c.redis.url, config=load_config(make_config_dir(tmp, pipeline_edit=edit))
    )
    c._clients.append(client)
    return client


def run_jobs(c: Cluster, tmp: Path) -> list[Ended]:
    base = c.client()

    def failing_candidate(d: dict[str, Any]) -> None:
        d["variants"][1]["model"] = "sim-fail500"
        d["modes"]["hybrid"]["steps"]["initial_translation"]["retries"] = 0

    partial = client_with(c, tmp / "partial", failing_candidate)
    broken = client_with(
        c, tmp / "broken", lambda d: use_models(d, translator_revision="sim-malformed")
    )
    slow = client_with(c, tmp / "slow", lambda d: use_models(d, editor_review="sim-slow"))
    specs = [
        (base, "hybrid", 1),
        (base, "hybrid", 2),
        (base, "non_reasoning", 2),
        (base, "reasoning", 2),
        (partial, "hybrid", 3),
        (broken, "hybrid", 2),
    ]
    jobs = [(c.submit(cl, workflow_mode=m, parallel_count=n), m, n) for cl, m, n in specs]
    doomed = c.submit(slow, parallel_count=2)
    for event in doomed.events(timeout=60):
        if event.event == "stage_started" and event.stage == "Editor Review":
            assert doomed.cancel()  # its editor call is in flight: abandoned, never billed
            break
    return [Ended(job, m, n) for job, m, n in jobs] + [Ended(doomed, "hybrid", 2)]


def test_usage_is_counted_once_and_agrees_everywhere(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    env = flower_environment(
        {
            **base_env(c.redis.url),
            settings.FLOWER_USER_ENV: USER,
            settings.FLOWER_PASSWORD_ENV: PASSWORD,
        },
        address="127.0.0.1",
        allow_no_auth_on_localhost=False,
    )
    flower, url = start_flower(env, tmp_path / "flower.log")  # before the jobs: it sees them
    try:
        jobs = run_jobs(c, tmp_path)
        storage = c.client().storage
        # The worker records a job's usage just after ending it: wait for the last one.
        c.wait_for(lambda: len(storage.usage.summaries(0)) == len(jobs), 30, "7 summaries")
        assert [e.status for e in jobs] == ["succeeded"] * 5 + ["failed", "cancelled"]
        assert [e.candidates_failed for e in jobs] == [0, 0, 0, 0, 1, 0, 0]
        check_summaries(jobs, storage.usage.summaries(0))
        expected = summed(jobs)
        counters = storage.usage.counters()
        assert_matches(expected, {_sample(k): v for k, v in counters.items()})
        check_recorded_once(c, jobs, counters)
        check_stats_cli(c, jobs)
        check_metrics(c, url, expected)
    finally:
        stop_process(flower)


def _sample(key: str) -> Sample:
    metric, labels = parse_counter_key(key)
    return metric, frozenset(labels.items())


def check_summaries(jobs: list[Ended], raw: list[str]) -> None:
    by_id = {s.job_id: s for s in (JobSummary.model_validate_json(r) for r in raw)}
    assert set(by_id) == {e.job.id for e in jobs}
    for e in jobs:
        s = by_id[e.job.id]
        assert (s.status, s.workflow_mode, s.parallel_count) == (e.status, e.mode, e.n)
        assert (s.prompt_tokens, s.completion_tokens, s.llm_calls) == (
            e.totals.prompt_tokens,
            e.totals.completion_tokens,
            e.totals.llm_calls,
        )
        assert s.cost == e.totals.cost
        assert (s.candidates_failed, s.candidates_total) == (
            e.candidates_failed,
            e.candidates_total,
        )
        if e.status == "succeeded":
            assert s.duration_s == e.totals.duration_s
    failed = by_id[jobs[5].job.id]
    assert failed.failed_stage == "Translator Revision"
    # Two candidates, the judge in two orders, the editor and both (unparseable) revisions.
    assert failed.llm_calls == 2 + 2 + 1 + 2 and failed.evaluation_method is not None
    cancelled = by_id[jobs[6].job.id]
    # The candidates and the judge's two orders; the editor's call was abandoned.
    assert cancelled.llm_calls == 2 + 2


def check_recorded_once(c: Cluster, jobs: list[Ended], before: dict[str, float]) -> None:
    """Ending an ended job again, or finalizing it again, records nothing."""
    storage = c.client().storage
    failed, cancelled, succeeded = jobs[5].job.id, jobs[6].job.id, jobs[0].job.id
    for _ in range(2):
        assert not fail_job(storage, failed, "Translator Revision", "ended twice")
        assert not fail_job(storage, succeeded, "Finalize", "ended twice")
    plan = storage.jobs.plan(cancelled)
    assert plan is not None and not cancel_job(storage, cancelled, plan)
    svc = Services(
        storage=storage, config=c.config, llm=OpenAICompatibleClient(models=c.config.models)
    )
    with pytest.raises(Cancelled):
        finalize(svc, succeeded)
    # The store itself counts a retried write of the same summary once.
    raw = storage.usage.summaries(0)[0]
    storage.usage.record(raw, {"vpsweb_jobs_total|mode=hybrid": 1.0}, 3600)
    assert len(storage.usage.summaries(0)) == len(jobs)
    assert storage.usage.counters() == before


def check_stats_cli(c: Cluster, jobs: list[Ended]) -> None:
    out = run_cli("stats", "--since", "1h", "--json", "--redis-url", c.redis.url)
    assert out.returncode == 0, out.stderr
    stats = Stats.model_validate(json.loads(out.stdout))
    o = stats.overall
    assert (o.jobs, o.succeeded, o.failed, o.cancelled) == (7, 5, 1, 1)
    assert o.success_rate == pytest.approx(5 / 6)
    tokens = sum(e.totals.prompt_tokens + e.totals.completion_tokens for e in jobs)
    assert o.prompt_tokens + o.completion_tokens == tokens
    assert o.tokens_per_job == pytest.approx(tokens / 7)
    assert o.llm_calls_per_job == pytest.approx(sum(e.totals.llm_calls for e in jobs) / 7)
    cost: dict[str, float] = defaultdict(float)
    for e in jobs:
        for currency, amount in e.totals.cost.items():
            cost[currency] += amount
    assert o.cost_per_job == pytest.approx({k: v / 7 for k, v in cost.items()})
    assert (o.candidates_failed, o.candidates_total) == (1, 1 + 2 + 2 + 2 + 3 + 2 + 2)
    assert o.candidate_failure_rate == pytest.approx(1 / 14)
    rows = {(r.workflow_mode, r.parallel_count): r for r in stats.rows}
    assert set(rows) == {("hybrid", 1), ("hybrid", 2), ("hybrid", 3)} | {
        ("non_reasoning", 2),
        ("reasoning", 2),
    }
    h2 = rows[("hybrid", 2)]  # one succeeded, one failed, one cancelled
    assert (h2.jobs, h2.succeeded, h2.failed, h2.cancelled) == (3, 1, 1, 1)
    assert h2.success_rate == 0.5 and h2.candidate_failure_rate == 0
    assert h2.p50_duration_s == h2.p95_duration_s == jobs[1].totals.duration_s
    h3 = rows[("hybrid", 3)]
    assert h3.candidate_failure_rate == pytest.approx(1 / 3) and h3.success_rate == 1
    assert rows[("hybrid", 1)].judge_fallbacks == 0 and rows[("hybrid", 1)].judged == 1

    text = run_cli("stats", "--since", "1h", "--redis-url", c.redis.url)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("jobs ended ")
    assert lines[2].split()[:4] == ["mode", "N", "jobs", "success"]
    assert [line.split()[:3] for line in lines if line.startswith("hybrid")] == [
        ["hybrid", "1", "1"],
        ["hybrid", "2", "3"],
        ["hybrid", "3", "1"],
    ]
    overall = next(line for line in lines if line.startswith("all"))
    assert overall.split()[1:3] == ["7", "83.3%"]
    # The providers' quotas follow: the offline jobs drew on the simulator's.
    assert "Provider quotas" in lines
    quotas = {q["bucket"]: q for q in json.loads(out.stdout)["quotas"]}
    assert quotas["simulator"]["calls"] > 0 and quotas["simulator"]["throttled"] == 0


def check_metrics(c: Cluster, url: str, expected: dict[Sample, float]) -> None:
    assert get(f"{url}/metrics", auth=False)[0] == 401

    def flower_saw_tasks() -> bool:
        status, body = get(f"{url}/metrics")
        assert status == 200
        return any(
            line.startswith("flower_events_total{") and 'type="task-succeeded"' in line
            for line in body.splitlines()
        )

    c.wait_for(flower_saw_tasks, 60, "Flower's task metrics")
    _, body = get(f"{url}/metrics")
    families = {f.name for f in text_string_to_metric_families(body)}  # the whole text parses
    assert "flower_events" in families and "vpsweb_tokens" in families
    ours = body[body.index("# HELP vpsweb_") :]
    assert "flower_" not in ours  # vpsweb's metrics come after Flower's
    found = parse_exposition(ours)
    quotas = {k: v for k, v in found.items() if k[0] in QUOTA_FAMILIES}
    assert_matches(expected, {k: v for k, v in found.items() if k not in quotas})
    # The offline jobs drew on the simulator's quota; every bucket of the config is there.
    simulator = frozenset({("bucket", "simulator")})
    assert quotas[("vpsweb_quota_calls_total", simulator)] > 0
    assert quotas[("vpsweb_provider_throttled_total", simulator)] == 0
    assert ("vpsweb_quota_waits_total", frozenset({("bucket", "deepseek")})) in quotas


def test_stats_refuses_a_bad_since_in_one_line() -> None:
    out = run_cli("stats", "--since", "yesterday", "--redis-url", "redis://127.0.0.1:9/0")
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "vpsweb: --since 'yesterday': give a duration such as 30m, 24h or 7d"
    ]
