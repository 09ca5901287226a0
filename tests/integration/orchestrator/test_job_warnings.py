"""Issue 21, points 7 and 13, against a real cluster (Redis, Celery workers, the
simulator over HTTP, the openai SDK): a judge that never answers and a revision
check whose model the server does not know end as succeeded jobs *with a warning*,
and the warning is in the result, the CLI's output, `vpsweb stats` and Flower's
/metrics. Reasoning models' ``reasoning_content`` reaches the result."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
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
from vpsweb.client.sync import Client
from vpsweb.config import load_config
from vpsweb.domain.result import TranslationOutput
from vpsweb.local.processes import stop_process
from vpsweb.monitoring.flower import flower_environment
from vpsweb.monitoring.usage_stats import Stats

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Edit = Callable[[dict[str, Any]], None]


def judge(model: str) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        use_models(d, evaluation=model)
        d["modes"]["hybrid"]["steps"]["evaluation"]["retries"] = 1  # two 429s per order

    return edit


def rate_limited_judge(d: dict[str, Any]) -> None:
    """A judge whose provider answers only 429: its calls wait for quota (429s are not
    attempts) until the step's slot ends, kept short here: 2 s of queue allowance and
    the two judge orders' 2 s budgets."""
    use_models(d, evaluation="sim-429")
    d["queue_allowance_s"] = 2
    d["modes"]["hybrid"]["steps"]["evaluation"].update(retries=0, timeout_s=2)


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp=tmp_path, sim_args=("--retry-after-ms", "50"))
    try:
        c.add_worker()
        yield c
    finally:
        c.close()


def client_with(c: Cluster, tmp: Path, edit: Edit | None) -> Client:
    client = Client(
        redis_url=c.redis.url, config=load_config(make_config_dir(tmp, pipeline_edit=edit))
    )
    c._clients.append(client)
    return client


def test_fallbacks_are_warnings_everywhere(cluster: Cluster, tmp_path: Path) -> None:
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
    flower, url = start_flower(env, tmp_path / "flower.log")
    try:
        specs = {
            "rate_limited": rate_limited_judge,
            "unparseable": judge("sim-malformed"),
            "unknown_check": lambda d: use_models(d, revision_check="sim-fail404"),
            "fine": None,
        }
        jobs = {
            name: c.submit(client_with(c, tmp_path / name, edit), parallel_count=3)
            for name, edit in specs.items()
        }
        outs = {name: job.result(timeout=120) for name, job in jobs.items()}
        check_results(outs)
        check_cli(c, {name: job.id for name, job in jobs.items()}, outs)
        storage = c.client().storage
        c.wait_for(lambda: len(storage.usage.summaries(0)) == 4, 30, "4 summaries")
        check_stats(c)
        check_metrics(url)
    finally:
        stop_process(flower)


def check_results(outs: dict[str, TranslationOutput]) -> None:
    for name in ("rate_limited", "unparseable"):
        ev = outs[name].evaluation
        assert ev.method == "fallback_line_count", name
        [w] = outs[name].warnings
        assert w.kind == "judge_unavailable" and "not judged" in w.message
    assert "HTTP 429" in outs["rate_limited"].warnings[0].message
    assert "selected_index" in outs["unparseable"].warnings[0].message
    check = outs["unknown_check"].revision_check
    assert check.decision == "revision_unchecked" and check.preferred == [None, None]
    [w] = outs["unknown_check"].warnings
    assert w.kind == "revision_check_unavailable" and "HTTP 404" in w.message
    assert outs["unknown_check"].final.source == "candidate"
    assert outs["fine"].warnings == [] and outs["fine"].evaluation.judged
    # Point 13 over real HTTP: hybrid mode's judge and editor are deepseek-reasoner,
    # whose answers the simulator sends with reasoning_content; the translator is not.
    fine = outs["fine"]
    assert fine.editor_review.reasoning.startswith("Okay, let me work through this.")
    assert fine.evaluation.reasoning and all(j.reasoning for j in fine.evaluation.judgements)
    assert all(c.reasoning == "" for c in fine.candidates)


def check_cli(c: Cluster, ids: dict[str, str], outs: dict[str, TranslationOutput]) -> None:
    for name, kind in (("rate_limited", "judge_unavailable"), ("unknown_check", None)):
        shown = run_cli("result", ids[name], "--redis-url", c.redis.url)
        assert shown.returncode == 0, shown.stderr
        w = outs[name].warnings[0]
        assert f"WARNING ({w.kind}): {w.message}." in shown.stdout
        if kind == "judge_unavailable":
            assert "the judge saw them shuffled" not in shown.stdout
        watched = run_cli("watch", ids[name], "--redis-url", c.redis.url)
        assert watched.returncode == 0, watched.stderr
        assert f"  warning: {w.message}" in watched.stdout.splitlines()
    judged = run_cli("result", ids["fine"], "--redis-url", c.redis.url)
    assert "WARNING" not in judged.stdout and "the judge saw them shuffled" in judged.stdout
    raw = run_cli("result", ids["unparseable"], "--json", "--redis-url", c.redis.url)
    assert json.loads(raw.stdout)["warnings"][0]["kind"] == "judge_unavailable"


def check_stats(c: Cluster) -> None:
    out = run_cli("stats", "--since", "1h", "--json", "--redis-url", c.redis.url)
    assert out.returncode == 0, out.stderr
    o = Stats.model_validate(json.loads(out.stdout)).overall
    assert (o.jobs, o.succeeded, o.with_warnings) == (4, 4, 3)
    assert o.warnings == {"judge_unavailable": 2, "revision_check_unavailable": 1}
    assert (o.judge_fallbacks, o.judged) == (2, 4)
    text = run_cli("stats", "--since", "1h", "--redis-url", c.redis.url).stdout
    assert (
        "warned: jobs that succeeded with a warning "
        "(judge_unavailable 2, revision_check_unavailable 1)"
    ) in text


def check_metrics(url: str) -> None:
    status, body = get(f"{url}/metrics")
    assert status == 200
    text_string_to_metric_families(body)  # the whole text parses
    ours = parse_exposition(body[body.index("# HELP vpsweb_") :])
    base = {("mode", "hybrid"), ("parallel_count", "3"), ("status", "succeeded")}

    def warned(kind: str) -> float:
        return ours[("vpsweb_jobs_with_warnings_total", frozenset({*base, ("kind", kind)}))]

    assert warned("judge_unavailable") == 2
    assert warned("revision_check_unavailable") == 1
