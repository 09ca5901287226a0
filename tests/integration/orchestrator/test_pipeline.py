"""The distributed pipeline end to end: real Redis, two real workers, the simulator."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from celery.result import AsyncResult

from tests.helpers.config import make_config_dir, use_models
from tests.helpers.jobs import submit
from tests.helpers.stage_calls import calls_per_job
from vpsweb.client import Client
from vpsweb.config import load_config
from vpsweb.domain.result import compute_totals
from vpsweb.errors import JobCancelled, JobFailed, RequestInvalid
from vpsweb.storage import JobStatus
from vpsweb.workers.factory import create_app

pytestmark = pytest.mark.integration


@pytest.fixture()
def client(redis_server, workers):
    with Client(redis_url=redis_server.url, config=load_config()) as c:
        yield c


def client_with(redis_server, tmp_path: Path, edit) -> Client:
    cfg = load_config(make_config_dir(tmp_path, pipeline_edit=edit))
    return Client(redis_url=redis_server.url, config=cfg)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_job_runs_exactly_n_candidate_tasks(redis_server, workers, sim_stats, tmp_path, n):
    # wait_all: every candidate is judged (the default quorum may leave a straggler late).
    client = client_with(redis_server, tmp_path, lambda d: d.update(straggler="wait_all"))
    before = sim_stats()
    job = submit(client, parallel_count=n)
    out = job.result(timeout=60)
    after = sim_stats()

    assert out.parallel_count == n and len(out.candidates) == n
    assert all(c.ok for c in out.candidates)
    # Each candidate ran as its own Celery task: its deterministic task id succeeded.
    app = create_app(redis_server.url)
    states = [AsyncResult(f"{job.id}.candidate-{i}", app=app).state for i in range(n)]
    assert states == ["SUCCESS"] * n
    results = [AsyncResult(f"{job.id}.candidate-{i}", app=app).result for i in range(n)]
    assert sorted(r["index"] for r in results) == list(range(n))
    # ...and made exactly one LLM call each, plus evaluation, review and revision.
    assert after["total_requests"] - before["total_requests"] == calls_per_job(n)
    assert out.totals.llm_calls == calls_per_job(n)

    assert out.selected_candidate.ok
    assert out.selected_candidate.index == out.evaluation.selected_index
    assert out.candidates[out.evaluation.selected_index].ok
    assert sorted(out.evaluation.presented_order) == list(range(n))
    recomputed = compute_totals(out.all_metrics(), out.totals.duration_s)
    assert out.totals.total_tokens == recomputed.total_tokens > 0
    assert out.totals.cost == recomputed.cost
    assert out.revision.translation.strip()
    assert job.status() is JobStatus.SUCCEEDED


def test_partial_failure_keeps_survivors(redis_server, workers, tmp_path):
    def edit(d):
        d["variants"][1]["model"] = "sim-fail500"
        d["modes"]["hybrid"]["steps"]["initial_translation"]["retries"] = 1

    with client_with(redis_server, tmp_path, edit) as c:
        out = submit(c, parallel_count=3).result(timeout=60)
    failed = [x for x in out.candidates if not x.ok]
    assert [x.index for x in failed] == [1]
    assert "HTTP 500" in (failed[0].error or "")
    assert failed[0].metrics is not None and failed[0].metrics.attempts == 2
    assert out.evaluation.selected_index in (0, 2)
    assert 1 not in out.evaluation.presented_order


def test_all_candidates_failing_fails_job_with_every_cause(redis_server, workers, tmp_path):
    with client_with(
        redis_server, tmp_path, lambda d: use_models(d, initial_translation="sim-fail401")
    ) as c:
        job = submit(c, parallel_count=3)
        with pytest.raises(JobFailed) as info:
            job.result(timeout=60)
        events = list(job.events(timeout=5))
    err = info.value
    assert err.stage == "Initial Translation"  # not the judge's fault
    assert "candidates 0 (literal), 1 (lyric), 2 (musical): " in err.cause
    assert err.cause.count("HTTP 401") == 1  # one cause, said once
    # The stage is shown as failed, never "completed" with 0 ok; the judge never starts.
    said = [(e.event.value, e.stage, e.status) for e in events]
    assert ("milestone", "Initial Translation", "failed") in said
    assert ("stage_failed", "Initial Translation", "failed") in said
    assert not [s for s in said if s[0] == "stage_completed"]
    assert not [s for s in said if s[:2] == ("stage_started", "Translation Evaluation")]


def test_failing_editor_step_fails_job(redis_server, workers, tmp_path, sim_stats):
    with client_with(
        redis_server, tmp_path, lambda d: use_models(d, editor_review="sim-fail401")
    ) as c:
        job = submit(c, parallel_count=2)
        with pytest.raises(JobFailed) as info:
            job.result(timeout=60)
    assert info.value.stage == "Editor Review"
    assert "HTTP 401" in info.value.cause
    assert job.status() is JobStatus.FAILED


def test_billed_malformed_attempts_count_in_totals(redis_server, workers, tmp_path):
    def edit(d):
        d["variants"][0]["model"] = "sim-malformedx1"

    with client_with(redis_server, tmp_path, edit) as c:
        out = submit(c, parallel_count=2).result(timeout=60)
    first = out.candidates[0]
    assert first.ok and first.metrics is not None
    assert first.metrics.attempts == 2 and first.metrics.billed_calls == 2
    assert out.totals.llm_calls == calls_per_job(2) + 1  # one billed malformed answer
    assert out.totals.prompt_tokens == sum(m.usage.prompt_tokens for m in out.all_metrics())


def test_result_readable_from_second_client(client, redis_server):
    job = submit(client, parallel_count=2)
    out = job.result(timeout=60)
    with Client(redis_url=redis_server.url) as other:
        again = other.get(job.id).result(timeout=5)
    assert again == out


def test_invalid_request_enqueues_nothing(client, redis_server):
    r = redis.Redis.from_url(redis_server.url)
    time.sleep(0.3)  # let earlier jobs' trailing writes settle
    keys_before = set(r.keys("*"))
    queues = {q: r.llen(q) for q in ("vpsweb.candidates", "vpsweb.evaluation", "vpsweb.review")}
    bad = [
        {"parallel_count": 9},
        {"source_lang": "fr"},
        {"target_lang": "pl"},
        {"target_lang": "en"},
        {"poem": "   \n "},
        {"poem": "x" * 50_001},
        {"workflow_mode": "turbo"},
    ]
    for kw in bad:
        with pytest.raises(RequestInvalid):
            submit(client, **kw)
    assert set(r.keys("*")) - keys_before == set()
    assert {q: r.llen(q) for q in queues} == queues


def test_cancel_stops_llm_calls(redis_server, workers, tmp_path, sim_stats):
    def edit(d):
        use_models(
            d,
            initial_translation="sim-slow",
            evaluation="sim-slow",
            editor_review="sim-slow",
            translator_revision="sim-slow",
        )

    with client_with(redis_server, tmp_path, edit) as c:
        job = submit(c, parallel_count=3)
        for event in job.events(timeout=30):
            if event.event == "stage_started":
                break
        time.sleep(0.3)
        assert c.cancel(job.id) is True
        with pytest.raises(JobCancelled):
            job.result(timeout=10)
        time.sleep(2.0)  # in-flight calls (1.5 s) finish; nothing new may start
        settled = sim_stats()["total_requests"]
        time.sleep(2.0)
        assert sim_stats()["total_requests"] == settled
        events = list(job.events(timeout=5))
    assert job.status() is JobStatus.CANCELLED
    assert events[-1].event == "job_finished" and events[-1].status == "cancelled"
    stages = {e.stage for e in events}
    assert "Editor Review" not in stages and "Translator Revision" not in stages


def test_redelivered_task_does_not_call_llm_again(client, redis_server, sim_stats):
    job = submit(client, parallel_count=2)
    out = job.result(timeout=60)
    app = create_app(redis_server.url)
    before = sim_stats()["total_requests"]
    # The same task ids and arguments, delivered again.
    again = [
        app.send_task("vpsweb.candidate", args=[job.id, 0], task_id=f"{job.id}.candidate-0"),
        app.send_task("vpsweb.editor_review", args=[job.id], task_id=f"{job.id}.editor_review"),
    ]
    for res in again:
        res.get(timeout=30)
    assert sim_stats()["total_requests"] == before
    assert client.get(job.id).result(timeout=5) == out


def test_sent_chords_leave_no_result_subscriptions(redis_server, client):
    """The dispatcher sends a chord per job; Celery's Redis backend used to subscribe
    to each header result and keep it for the worker's life (celery/celery#3812)."""
    jobs = [submit(client, parallel_count=3) for _ in range(4)]
    for job in jobs:
        job.result(timeout=60)
    store = redis.Redis.from_url(redis_server.url)
    subscribed = [
        channel for job in jobs for channel in store.pubsub_channels(f"celery-task-meta-{job.id}.*")
    ]
    assert subscribed == []
    assert store.pubsub_numsub(*(f"celery-task-meta-{j.id}.candidate-0" for j in jobs)) == [
        (f"celery-task-meta-{j.id}.candidate-0".encode(), 0) for j in jobs
    ]
