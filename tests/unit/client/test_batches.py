"""Batches through the client on the memory store: validated all or none, content
addressing (reuse what succeeded or is under way, not what failed; ``force``), the
idempotency key (one job per key while it is stored), the budget refused up front,
progress, events and results, cancel and resume. With real workers and Redis:
tests/integration/client/test_batches.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers.poems import FOG, FOG_COUPLET, JING_YE_SI
from vpsweb.client.sync import Client
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.models import Priority, TranslationRequest
from vpsweb.domain.progress import EventKind
from vpsweb.errors import BatchNotFound, RequestInvalid
from vpsweb.orchestrator.lifecycle import fail_job
from vpsweb.storage import Event, JobStatus
from vpsweb.storage.memory import ManualClock, memory_storage

UNREACHABLE = "redis://127.0.0.1:9/0"  # nothing may be read or written there
POEMS = [FOG, FOG_COUPLET, "Line one\nline two\n", "Another\npoem here\n"]
DONE = Event(EventKind.JOB_FINISHED, 100, {"status": "succeeded"})


def _request(poem: str, **kw: object) -> dict:
    return {"poem": poem, "source_lang": "en", "target_lang": "zh-CN", "parallel_count": 1} | kw


@dataclass(frozen=True)
class Entry:  # as vpsweb.batches.sources.BatchEntry
    name: str
    where: str
    request: TranslationRequest


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture()
def client(cfg: AppConfig, clock: ManualClock) -> Iterator[Client]:
    c = Client(redis_url=UNREACHABLE, config=cfg)
    c.storage = memory_storage(clock=clock)
    yield c
    c.close()


def _succeed(client: Client, job_id: str) -> None:
    jobs = client.storage.jobs
    jobs.mark_running(job_id, 600)
    jobs.end(job_id, JobStatus.SUCCEEDED, 600, events=[DONE])  # its result: gone


def test_a_batch_is_planned_all_or_none_and_written_with_its_record(client: Client) -> None:
    with pytest.raises(RequestInvalid) as bad:
        client.submit_batch(
            [
                Entry("fog", "poems/fog.txt", TranslationRequest(**_request(FOG))),
                _request(FOG, source_lang="xx"),
                Entry("fog", "poems.csv row 4", TranslationRequest(**_request(FOG_COUPLET))),
            ],
            offline=True,
        )
    assert bad.value.errors[0].startswith("request 1: source_lang")
    assert bad.value.errors[-1] == "fog: the name is used by more than one entry"
    assert client.storage.jobs.recent_jobs() == [] and client.batches() == []
    with pytest.raises(RequestInvalid, match="at least one poem"):
        client.submit_batch([], offline=True)

    li_bai = TranslationRequest(**_request(JING_YE_SI, source_lang="zh-CN", target_lang="en"))
    entry = Entry("li-bai", "poems/li-bai.txt", li_bai)
    batch = client.submit_batch([entry, _request(FOG)], name="mixed", offline=True)
    record = batch.record
    assert [(m.name, m.where, m.reused) for m in record.entries] == [
        ("li-bai", "poems/li-bai.txt", False),
        ("poem-002", "request 1", False),
    ]
    assert record.name == "mixed" and record.version == 1 and record.currency == "CNY"
    assert [j.id for j in batch.jobs] == record.job_ids
    for job in batch.jobs:
        plan = job.record().plan
        assert plan.batch_id == batch.id and plan.priority is Priority.BATCH
    assert client.batch(batch.id).record == record
    assert [r.batch_id for r in client.batches()] == [batch.id]
    with pytest.raises(BatchNotFound):
        client.batch("0123456789ab")
    with pytest.raises(BatchNotFound):
        client.batch("../etc")


def test_the_same_poems_again_reuse_what_succeeded_or_is_under_way(client: Client) -> None:
    first = client.submit_batch([_request(p) for p in POEMS], offline=True)
    ids = first.record.job_ids
    _succeed(client, ids[0])
    client.storage.jobs.mark_running(ids[1], 600)
    fail_job(client.storage, ids[2], "Editor Review", "boom")
    client.cancel(ids[3])
    again = client.submit_batch([_request(p) for p in POEMS], offline=True)
    members = again.record.entries
    assert [m.reused for m in members] == [True, True, False, False]
    assert [m.job_id for m in members[:2]] == ids[:2]
    assert members[2].job_id not in ids and members[3].job_id not in ids
    assert len(client.storage.jobs.recent_jobs(100)) == 6  # two new jobs only
    # A third time: the new jobs are under way, so they are reused too.
    third = client.submit_batch([_request(p) for p in POEMS], offline=True)
    assert third.record.job_ids == again.record.job_ids
    # A request that differs in what it translates is not the same work.
    other = client.submit_batch([_request(POEMS[0], title="Fog")], offline=True)
    assert not other.record.entries[0].reused
    # force: new jobs whatever was done.
    forced = client.submit_batch([_request(p) for p in POEMS], force=True, offline=True)
    assert not any(m.reused for m in forced.record.entries)
    assert set(forced.record.job_ids).isdisjoint(third.record.job_ids)


def test_duplicates_in_one_batch_share_a_job_unless_forced(client: Client) -> None:
    batch = client.submit_batch([_request(FOG), _request(FOG)], offline=True)
    first, second = batch.record.entries
    assert first.job_id == second.job_id and (first.reused, second.reused) == (False, True)
    jobs = client.submit_many([_request(FOG), _request(FOG)], offline=True)
    assert len({j.id for j in jobs}) == 2  # submit_many: a job per request, as always


def test_an_idempotency_key_makes_one_job_while_its_job_is_stored(
    client: Client, clock: ManualClock
) -> None:
    job = client.submit(**_request(FOG), idempotency_key="retry-1", offline=True)
    again = client.submit(**_request(FOG), idempotency_key="retry-1", offline=True)
    assert again.id == job.id and client.storage.jobs.recent_jobs() == [job.id]
    fail_job(client.storage, job.id, "Editor Review", "boom")
    # Whatever became of it: a retried submission is the same submission.
    assert client.submit(**_request(FOG), idempotency_key="retry-1", offline=True).id == job.id
    other = client.submit(**_request(FOG), idempotency_key="retry-2", offline=True)
    assert other.id != job.id
    # In a batch too, before content addressing (the failed job is the key's).
    batch = client.submit_batch([_request(FOG, idempotency_key="retry-1")], offline=True)
    assert batch.record.job_ids == [job.id] and batch.record.entries[0].reused
    # A key whose job expired is free again.
    clock.advance(client.config.pipeline.retention_s + 10)
    fresh = client.submit(**_request(FOG), idempotency_key="retry-1", offline=True)
    assert fresh.id != job.id


def test_a_budget_below_the_estimate_is_refused_before_anything_is_written(
    client: Client,
) -> None:
    requests = [_request(p) for p in POEMS]
    estimate = client.estimate_batch(requests, offline=True)
    cost = sum(estimate.expected.cost.values())
    assert estimate.count == 4 and estimate.currencies == ["CNY"]
    with pytest.raises(RequestInvalid, match="below this batch's estimated cost") as refused:
        client.submit_batch(requests, budget=cost / 2, offline=True)
    assert "4 new job(s)" in str(refused.value)
    assert client.storage.jobs.recent_jobs() == [] and client.batches() == []
    batch = client.submit_batch(requests, budget=cost * 1.1, offline=True)
    assert batch.record.budget == cost * 1.1
    assert all(j.record().plan.batch_budget == cost * 1.1 for j in batch.jobs)
    # Submitted again: every job is reused, nothing new to pay for, so it fits any budget.
    again = client.submit_batch(requests, budget=cost / 100, offline=True)
    assert all(m.reused for m in again.record.entries)
    with pytest.raises(RequestInvalid, match="budget: must be above 0"):
        client.submit_batch(requests, budget=0, offline=True)


def test_progress_events_and_results_follow_the_members(client: Client) -> None:
    batch = client.submit_batch([_request(p) for p in POEMS[:3]], offline=True)
    ids = batch.record.job_ids
    progress = batch.progress()
    assert progress.counts.queued == 3 and progress.percent == 0 and progress.eta_s is None
    _succeed(client, ids[0])
    client.storage.jobs.mark_running(ids[1], 600)
    fail_job(client.storage, ids[2], "Editor Review", "boom")
    progress = batch.progress()
    counts = progress.counts
    assert (counts.succeeded, counts.running, counts.failed) == (1, 1, 1)
    assert progress.running == [ids[1]] and progress.percent == pytest.approx(66.67)
    with pytest.raises(TimeoutError):
        list(batch.events(timeout=0.1))  # one job is still running
    assert batch.cancel() == 1  # the running one
    events = list(batch.events(timeout=5))
    ends = {e.name: (e.kind, e.cause) for e in events if e.terminal}
    assert ends == {
        "poem-001": ("job_succeeded", None),
        "poem-002": ("job_cancelled", None),
        "poem-003": ("job_failed", "Editor Review: boom"),
    }
    assert [e.kind for e in events].count("job_started") == 3
    results = {r.member.name: r for r in batch.results(timeout=5)}
    assert results["poem-001"].status == "expired" and results["poem-001"].output is None
    assert results["poem-001"].error == "its result has expired"
    assert results["poem-003"].error == "Editor Review: boom"
    assert batch.progress().done and batch.cancel() == 0


def test_resume_gives_failed_and_cancelled_members_new_jobs(client: Client) -> None:
    batch = client.submit_batch([_request(p) for p in POEMS[:3]], name="tang", offline=True)
    ids = batch.record.job_ids
    _succeed(client, ids[0])
    fail_job(client.storage, ids[1], "Editor Review", "boom")
    client.cancel(ids[2])
    assert batch.resume() is batch
    record = batch.record
    assert record.version == 2 and record.batch_id == batch.id and record.name == "tang"
    assert record.job_ids[0] == ids[0]
    assert record.job_ids[1] not in ids and record.job_ids[2] not in ids
    assert [m.previous for m in record.entries] == [[], [ids[1]], [ids[2]]]
    assert client.batch(batch.id).record == record
    for job_id in record.job_ids[1:]:
        assert client.storage.jobs.status(job_id) is JobStatus.QUEUED
    assert batch.progress().counts.queued == 2
    before = set(client.storage.jobs.recent_jobs(100))
    assert batch.resume().record.version == 2  # nothing failed: nothing written
    assert set(client.storage.jobs.recent_jobs(100)) == before


def test_a_resume_counts_what_the_batch_spent_against_its_budget(client: Client) -> None:
    requests = [_request(p) for p in POEMS[:2]]
    cost = sum(client.estimate_batch(requests, offline=True).expected.cost.values())
    batch = client.submit_batch(requests, budget=cost * 1.05, offline=True)
    for job_id in batch.record.job_ids:
        fail_job(client.storage, job_id, "Initial Translation", "budget reached")
    # What the batch spent so far: its jobs' stored steps (counted by the step log).
    payload = json.dumps({"metrics": {"usage": {"cost": cost, "currency": "CNY"}, "attempts": 3}})
    job = batch.record.job_ids[0]
    steps = client.storage.steps
    steps.finish(
        job,
        "candidate-0",
        payload,
        owner="w",
        ttl=600,
        end=None,
        once="",
        item=None,
        batch_id=batch.id,
    )
    with pytest.raises(RequestInvalid, match="on top of the"):
        batch.resume()
    assert batch.resume(budget=cost * 2.1).record.budget == cost * 2.1
    assert batch.progress().budget == cost * 2.1 and batch.progress().calls == 3
